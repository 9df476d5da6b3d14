"""Attach one L1/L2 penalty to every kernel of an existing model."""

from __future__ import annotations

import keras

from keras_training_kit import _compat
from keras_training_kit import _validation as v
from keras_training_kit.regularizers.l1 import L1
from keras_training_kit.regularizers.l1l2 import L1L2
from keras_training_kit.regularizers.l2 import L2

# Variable name -> the layer attribute(s) Keras layers serialize it under,
# first match wins (DepthwiseConv names its kernel "kernel" but calls the
# regularizer `depthwise_regularizer`).
_KERNELS = {
    "kernel": ("kernel_regularizer", "depthwise_regularizer"),
    "recurrent_kernel": ("recurrent_regularizer",),
    "depthwise_kernel": ("depthwise_regularizer",),
    "pointwise_kernel": ("pointwise_regularizer",),
}
_EMBEDDINGS = {"embeddings": ("embeddings_regularizer",)}
_BIASES = {"bias": ("bias_regularizer",)}


def _penalty(l1: float, l2: float):
    if l1 and l2:
        return L1L2(l1=l1, l2=l2)
    if l1:
        return L1(l1)
    if l2:
        return L2(l2)
    return None


def _is_normalization(layer: keras.layers.Layer) -> bool:
    # Never touch gamma/beta of BatchNormalization, LayerNormalization,
    # GroupNormalization, ours or anyone's: they are not weights to decay.
    return type(layer).__name__.endswith("Normalization")


def _sublayers(layer: keras.layers.Layer, recursive: bool):
    return _compat.flatten_layers(
        layer, include_self=False, recursive=recursive
    )


def _own_variables(layer: keras.layers.Layer) -> list:
    nested = {
        id(w) for sub in _sublayers(layer, recursive=False) for w in sub.weights
    }
    return [w for w in layer.trainable_weights if id(w) not in nested]


def _set_attribute(layer, names, penalty) -> bool:
    for name in names:
        if name in dir(type(layer)) and isinstance(
            getattr(type(layer), name), property
        ):
            # e.g. `LSTM.kernel_regularizer` reads the cell's: set it there.
            continue
        if hasattr(layer, name):
            setattr(layer, name, penalty)
            return True
    return False


def penalize(
    model: keras.layers.Layer,
    l1: float = 0.0,
    l2: float = 0.0,
    include_bias: bool = False,
    include_embeddings: bool = False,
) -> keras.layers.Layer:
    """Puts the course's L1/L2 penalty on every kernel of a model.

    Walks every layer, nested models and sublayers included (RNN cells,
    `Bidirectional`, `TimeDistributed`, attention heads), and sets on each
    kernel (`kernel`, `recurrent_kernel`, `depthwise_kernel`,
    `pointwise_kernel`; Dense, Conv*, Maxout, RNN cells, ...) the penalty

    ```
    l1 * sum(|w|) + (l2 / 2) * sum(w ** 2)
    ```

    i.e. `ktk.regularizers.L1`, `L2` or `L1L2`. Keras 3 collects weight
    penalties from `variable.regularizer` of each trainable variable (see
    `Layer.losses`), so that is what is set for built layers; the layer's
    own `*_regularizer` attribute is set too, so the penalty is part of
    `get_config` and survives `model.save` / `load_model(safe_mode=True)`.
    Unbuilt layers get the attribute and pick it up when they build.

    Biases only with `include_bias=True`; `Embedding` tables only with
    `include_embeddings=True`; normalization parameters (`gamma`, `beta`
    of any `*Normalization` layer) never.

    The penalty *replaces* whatever regularizer these weights had, so the
    call is idempotent: calling it twice does not double the penalty, and
    `penalize(model)` with `l1=l2=0` removes it. A compiled model's cached
    train/test functions are reset so that the next `fit` traces the new
    losses.

    Args:
        model: a Keras model or layer (modified in place).
        l1: float >= 0, L1 factor `λ₁`. Defaults to `0.0`.
        l2: float >= 0, L2 factor `λ` of `(λ/2)‖w‖²`. Defaults to `0.0`.
        include_bias: also penalize biases. Defaults to `False`.
        include_embeddings: also penalize `Embedding` tables. Defaults
            to `False`.

    Returns:
        `model`, for chaining.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model = penalize(model, l2=1e-4)
    >>> len(model.losses)
    1
    """
    l1 = v.check_non_negative("l1", l1)
    l2 = v.check_non_negative("l2", l2)
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Argument `model` must be a Keras model or layer. "
            f"Received: model={model!r}"
        )
    penalty = _penalty(l1, l2)
    targets = dict(_KERNELS)
    if include_bias:
        targets.update(_BIASES)
    if include_embeddings:
        targets.update(_EMBEDDINGS)

    for layer in [model, *_sublayers(model, recursive=True)]:
        if _is_normalization(layer):
            continue
        if not layer.built:
            for names in targets.values():
                _set_attribute(layer, names, penalty)
            continue
        for variable in _own_variables(layer):
            names = targets.get(variable.name)
            if names is None:
                continue
            variable.regularizer = penalty
            _set_attribute(layer, names, penalty)

    for layer in [model, *_sublayers(model, recursive=True)]:
        if isinstance(layer, keras.Model):
            # Cached traced steps captured the old `model.losses`.
            layer.train_function = None
            layer.test_function = None
    return model
