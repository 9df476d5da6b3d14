"""The course's training knobs declared on a keras-tuner `HyperParameters`."""

from __future__ import annotations

from typing import Any

OPTIMIZERS = ("adam", "sgd", "momentum", "rmsprop", "adagrad")

DEFAULTS: dict[str, Any] = {
    "optimizer": list(OPTIMIZERS),
    "learning_rate": (1e-4, 1e-1),
    "batch_size": [32, 64, 128],
    "dropout": (0.0, 0.5),
    "l2": [0.0, 1e-4, 1e-3, 1e-2],
    "batch_norm": [False, True],
    "activation": ["relu", "tanh", "elu"],
    "depth": (1, 3),
    "width": [32, 64, 128],
}

# Class name in ktk.optimizers, keras fallback name, extra kwargs.
_OPTIMIZER_CLASSES = {
    "sgd": ("SGD", "SGD", {}),
    "momentum": ("Momentum", "SGD", {"momentum": 0.9}),
    "adagrad": ("Adagrad", "Adagrad", {}),
    "rmsprop": ("RMSProp", "RMSprop", {}),
    "adam": ("Adam", "Adam", {}),
}


def make_optimizer(name: str, learning_rate: float = 0.001) -> Any:
    """The kit's optimizer `name` (one of `OPTIMIZERS`) at `learning_rate`.

    Uses `ktk.optimizers` when the class exists there, else the Keras
    optimizer with the same update rule (`momentum` = SGD with momentum
    0.9), so a search runs whatever parts of the kit are installed.
    """
    if name not in _OPTIMIZER_CLASSES:
        raise ValueError(
            f"Argument `name` must be one of {OPTIMIZERS}. Received: "
            f"name={name!r}"
        )
    import keras

    from keras_training_kit import optimizers as kit_optimizers

    kit_name, keras_name, extra = _OPTIMIZER_CLASSES[name]
    cls = getattr(kit_optimizers, kit_name, None)
    if cls is not None:
        return cls(learning_rate=learning_rate)
    return getattr(keras.optimizers, keras_name)(
        learning_rate=learning_rate, **extra
    )


def _declare(hp: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, tuple):
        low, high = spec
        if name in ("depth", "width", "batch_size"):
            return hp.Int(name, int(low), int(high))
        if name in ("learning_rate", "l2"):
            return hp.Float(name, low, high, sampling="log")
        return hp.Float(name, low, high, step=(high - low) / 5 or None)
    if isinstance(spec, list):
        if not spec:
            raise ValueError(
                f"Argument `{name}` must list at least one value. "
                f"Received: {name}={spec!r}"
            )
        if name == "batch_norm" and sorted(spec) == [False, True]:
            return hp.Boolean(name, default=bool(spec[0]))
        if len(spec) == 1:
            return hp.Fixed(name, spec[0])
        return hp.Choice(name, spec)
    return hp.Fixed(name, spec)


def training_space(hp: Any, **choices: Any) -> dict[str, Any]:
    """Declares the course's training hyperparameters on `hp`.

    One call declares the knobs of the course's tuning topic: the
    optimizer (the kit's SGD, Momentum, Adagrad, RMSProp, Adam), the
    learning rate (log scale), the batch size (honoured by `search`, which
    passes it to `fit`), dropout rate, L2 factor, batch normalization on/off,
    activation, and depth/width of an MLP. Each keyword overrides one knob:

    - a tuple `(low, high)`: a range (log scale for `learning_rate` and
      `l2`; integers for `depth`, `width`, `batch_size`),
    - a list: a choice among the values,
    - a single value: fixed,
    - `None`: not declared (absent from the result).

    Defaults: `optimizer=["adam", "sgd", "momentum", "rmsprop", "adagrad"]`,
    `learning_rate=(1e-4, 1e-1)`, `batch_size=[32, 64, 128]`,
    `dropout=(0.0, 0.5)`, `l2=[0.0, 1e-4, 1e-3, 1e-2]`,
    `batch_norm=[False, True]`, `activation=["relu", "tanh", "elu"]`,
    `depth=(1, 3)`, `width=[32, 64, 128]`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        **choices: overrides of the knobs above.

    Returns:
        A dict knob name -> the value of this trial.

    Example:

    >>> import keras, keras_tuner
    >>> import keras_training_kit as ktk
    >>> def build_model(hp):
    ...     c = ktk.tuning.training_space(hp, depth=None, width=[32, 64])
    ...     model = keras.Sequential([keras.Input((64,))])
    ...     model.add(keras.layers.Dense(c["width"], c["activation"]))
    ...     model.add(keras.layers.Dropout(c["dropout"]))
    ...     model.add(keras.layers.Dense(10))
    ...     model.compile(
    ...         ktk.tuning.make_optimizer(c["optimizer"], c["learning_rate"]),
    ...         keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ...     return model
    >>> hp = keras_tuner.HyperParameters()
    >>> model = build_model(hp)  # declares the knobs, at their defaults
    >>> sorted(hp.values)[:4]
    ['activation', 'batch_norm', 'batch_size', 'dropout']
    """
    unknown = sorted(set(choices) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown knobs {unknown}; `training_space` knows "
            f"{sorted(DEFAULTS)}."
        )
    optimizers = choices.get("optimizer", DEFAULTS["optimizer"])
    for name in optimizers if isinstance(optimizers, list) else [optimizers]:
        if name is not None and name not in OPTIMIZERS:
            raise ValueError(
                f"Argument `optimizer` must be one of {OPTIMIZERS}. "
                f"Received: optimizer={name!r}"
            )
    values = {}
    for name, default in DEFAULTS.items():
        spec = choices.get(name, default)
        if spec is None:
            continue
        values[name] = _declare(hp, name, spec)
    return values
