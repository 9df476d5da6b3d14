"""Model surgery: rebuild a Sequential or functional model with changes.

Every repair run trains a *rebuilt copy* of the user's model, never the
model itself: the layers are re-created from their configs
(`keras.models.clone_model` with a `clone_function`, plus a
`call_function` that inserts layers for functional models), changed as
the `Recipe` says, the initial weights copied from the template where the
layer is unchanged, and the copy recompiled from the template's compile
config with the changed optimizer config.
"""

from __future__ import annotations

import copy
from typing import Any

import keras
import numpy as np

from keras_training_kit.diagnosis.repair import _rates

_SATURATING = ("sigmoid", "tanh", "hard_sigmoid", "softsign")
_LOSSES_CATEGORICAL = ("sparse_categorical", "categorical_crossentropy")
_REGRESSION_KEYS = ("squared", "absolute", "huber", "log_cosh", "mse", "mae")
_RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "relu6")


class Unapplicable(Exception):
    """A remedy that cannot be applied to this model; the text says why."""


def is_rebuildable(model: keras.Model) -> bool:
    """Sequential and functional models can be rebuilt from their configs."""
    if isinstance(model, keras.Sequential):
        return True
    return any(c.__name__ == "Functional" for c in type(model).__mro__)


def walk(model: keras.layers.Layer):
    """Every layer of a model, nested models' layers included."""
    for layer in getattr(model, "layers", ()):
        yield layer
        if isinstance(layer, keras.Model):
            yield from walk(layer)


def initial_weights(model: keras.Model) -> dict[str, list]:
    """The weights of each named layer, to start every rebuilt copy from."""
    return {layer.name: layer.get_weights() for layer in walk(model)}


def activation_name(value: Any) -> str:
    """The name of an activation as stored in a layer config."""
    if value is None:
        return "linear"
    if isinstance(value, dict):
        value = value.get("config", value.get("registered_name", ""))
    if callable(value):
        value = getattr(value, "__name__", "")
    return str(value).rsplit(">", 1)[-1].lower()


def output_layer_names(model: keras.Model) -> set[str]:
    """Names of the layers that produce the model's outputs."""
    if isinstance(model, keras.Sequential):
        names, layers = set(), list(model.layers)
        for layer in reversed(layers):
            names.add(layer.name)
            if layer.weights:  # stop at the last layer with weights
                break
        return names
    return set(layer_refs(model.get_config(), "output_layers"))


def output_layers(model: keras.Model) -> list:
    """The layers that produce the model's outputs (`output_layer_names`)."""
    names = output_layer_names(model)
    return [layer for layer in walk(model) if layer.name in names]


def layer_refs(config: dict, key: str) -> list[str]:
    """Layer names of a functional config's `input_layers`/`output_layers`."""
    refs = config.get(key, [])
    if refs and isinstance(refs[0], str):  # a single [name, node, index]
        refs = [refs]
    return [r[0] for r in refs]


def has_units(config: dict) -> bool:
    return "units" in config or "filters" in config


def _scale_regularizer(reg: Any, factor: float) -> tuple[Any, bool]:
    if not isinstance(reg, dict):
        return reg, False
    reg = copy.deepcopy(reg)
    inner = reg.get("config", {})
    changed = False
    for key in ("l1", "l2"):
        if isinstance(inner.get(key), (int, float)) and inner[key] > 0:
            inner[key] = float(inner[key]) * factor
            changed = True
    return reg, changed


class _Transformer:
    """Turns one layer into the chain of layers that replaces it."""

    def __init__(self, recipe: Any, outputs: set[str], output_fix: dict):
        self.recipe = recipe
        self.outputs = outputs
        self.output_fix = output_fix
        self.changed: set[str] = set()  # layers whose init was redrawn
        # Layers to apply before a layer (by name), e.g. a new hidden layer.
        self.before: dict[str, list] = {}
        self.regularization_scaled = 0

    def __call__(self, layer: keras.layers.Layer) -> list:
        if isinstance(layer, keras.Model):
            return [layer.__class__.from_config(layer.get_config())]
        r = self.recipe
        config = layer.get_config()
        cls = layer.__class__
        name = layer.name
        if name in self.outputs:
            if r.hidden and "units" in config:
                # A linear model made deeper: the hidden layer goes first
                # (see `before`), widened with the rest. It is the layer a
                # user would write, Keras' Dense defaults: He variance
                # here, then Glorot in the output layer, starts outputs
                # twice as wide as the targets and (on Friedman's
                # regression) the loss above `high_initial_loss`'s bar.
                self.before[name] = [keras.layers.Dense(
                    int(r.hidden) * int(r.width), activation="relu",
                    name=f"{name}_hidden",
                )]
                self.changed.add(name)
            if self.output_fix and has_units(config):
                config.update({k: v for k, v in self.output_fix.items()
                               if k != "loss"})
            if r.initializer and "kernel_initializer" in config:
                config["kernel_initializer"] = "glorot_uniform"
                if r.initializer == "reinitialize" and "bias_initializer" in (
                    config
                ):
                    config["bias_initializer"] = "zeros"
                self.changed.add(name)
            return [cls.from_config(config)]
        if r.reg_factor != 1.0:
            self._less_regularization(config)
        units = has_units(config)
        if units and r.width != 1:
            key = "units" if "units" in config else "filters"
            config[key] = int(config[key]) * int(r.width)
        nonlinearity = None  # a layer applied after this one
        act = activation_name(config.get("activation"))
        if isinstance(layer, keras.layers.ReLU) and r.leaky_alpha:
            act, cls = "relu", keras.layers.Activation
            config = {"name": name, "activation": "relu"}
        swapped = bool(r.relu and act in _SATURATING)
        if swapped:  # with the initialization He et al. (2015) derive for it
            act = "relu"
            if "kernel_initializer" in config:
                config["kernel_initializer"] = "he_normal"
                self.changed.add(name)
        if r.leaky_alpha is not None and act == "relu":
            act = "leaky_relu"
        if "activation" in config:
            if act == "leaky_relu":
                nonlinearity = keras.layers.LeakyReLU(
                    negative_slope=r.leaky_alpha, name=f"{name}_leaky_relu"
                )
                config["activation"] = "linear"
            elif act != activation_name(config.get("activation")):
                config["activation"] = act
        if (r.initializer and r.initializer_layers == "all"
                and "kernel_initializer" in config):
            config["kernel_initializer"] = (
                "he_normal" if act in _RELU_FAMILY else "glorot_uniform"
            )
            if r.initializer == "reinitialize" and "bias_initializer" in config:
                config["bias_initializer"] = "zeros"
            self.changed.add(name)
        chain = []
        if r.batch_norm and units:
            if nonlinearity is None and act != "linear":
                nonlinearity = keras.layers.Activation(
                    config["activation"], name=f"{name}_activation"
                )
            config["activation"] = "linear"
            chain.append(
                keras.layers.BatchNormalization(name=f"{name}_batch_norm")
            )
        if nonlinearity is not None:
            chain.append(nonlinearity)
        if r.dropout and units:
            from keras_training_kit.layers import Dropout

            chain.append(Dropout(r.dropout, name=f"{name}_dropout"))
        return [cls.from_config(config), *chain]

    def _less_regularization(self, config: dict) -> None:
        factor = self.recipe.reg_factor
        for key in ("kernel_regularizer", "bias_regularizer",
                    "activity_regularizer"):
            if key in config:
                config[key], changed = _scale_regularizer(config[key], factor)
                self.regularization_scaled += changed
        if "rate" in config and isinstance(config["rate"], (int, float)):
            if config["rate"] > 0:
                config["rate"] = float(config["rate"]) * factor
                self.regularization_scaled += 1


def rebuild(
    template: keras.Model,
    recipe: Any,
    normalizer: keras.layers.Layer | None = None,
    output_fix: dict | None = None,
) -> tuple[keras.Model, _Transformer]:
    """A new, uncompiled model: `template` changed as `recipe` says."""
    outputs = output_layer_names(template)
    transform = _Transformer(recipe, outputs, output_fix or {})
    if isinstance(template, keras.Sequential):
        spec = template.inputs[0]
        inp = keras.Input(batch_shape=tuple(spec.shape), dtype=spec.dtype)
        layers = []
        for layer in template.layers:
            chain = transform(layer)
            layers += [*transform.before.get(layer.name, ()), *chain]
        if normalizer is not None:
            layers = [normalizer, *layers]
        model = keras.Sequential([inp, *layers], name=template.name)
        return model, transform
    extras: dict[int, list] = {}
    firsts: dict[int, list] = {}
    normalized: dict[int, Any] = {}

    def clone_function(layer):
        chain = transform(layer)
        extras[id(chain[0])] = chain[1:]
        firsts[id(chain[0])] = transform.before.get(layer.name, [])
        return chain[0]

    def call_function(layer, *args, **kwargs):
        if normalizer is not None and args:
            first = args[0]
            if id(first) in inputs_ids:
                if id(first) not in normalized:
                    normalized[id(first)] = normalizer(first)
                args = (normalized[id(first)], *args[1:])
        if firsts.get(id(layer)) and args:
            first = args[0]
            for extra in firsts[id(layer)]:
                first = extra(first)
            args = (first, *args[1:])
        out = layer(*args, **kwargs)
        for extra in extras.get(id(layer), ()):
            out = extra(out)
        return out

    names = layer_refs(template.get_config(), "input_layers")
    if len(names) != len(template.inputs):
        names = [None] * len(template.inputs)
    new_inputs = [
        keras.Input(batch_shape=tuple(t.shape), dtype=t.dtype, name=n)
        for t, n in zip(template.inputs, names)
    ]
    inputs_ids = {id(t) for t in new_inputs}
    structure = new_inputs
    if len(new_inputs) == 1 and not isinstance(
        template.input, (list, tuple, dict)
    ):
        structure = new_inputs[0]
    model = keras.models.clone_model(
        template,
        input_tensors=structure,
        clone_function=clone_function,
        call_function=call_function,
    )
    return model, transform


def transfer_weights(
    model: keras.Model, weights: dict[str, list], skip: set[str]
) -> int:
    """Copies the template's initial weights into unchanged layers."""
    copied = 0
    for layer in walk(model):
        saved = weights.get(layer.name)
        if saved is None or layer.name in skip or not saved:
            continue
        current = layer.get_weights()
        if len(current) == len(saved) and all(
            np.shape(a) == np.shape(b) for a, b in zip(current, saved)
        ):
            layer.set_weights(saved)
            copied += 1
    return copied


def optimizer_config(template: keras.Model, recipe: Any) -> dict:
    """The template's optimizer config with the recipe's changes."""
    config = keras.optimizers.serialize(template.optimizer)
    inner = config["config"]
    if recipe.learning_rate is not None:
        schedule = _rates.schedule_config(config)
        inner["learning_rate"] = float(recipe.learning_rate) if (
            schedule is None
        ) else _rates.scaled(schedule, recipe.learning_rate)
    if recipe.clipnorm is not None:
        inner["clipnorm"] = None
        inner["clipvalue"] = None
        inner["global_clipnorm"] = float(recipe.clipnorm)
    if recipe.reg_factor != 1.0 and inner.get("weight_decay"):
        inner["weight_decay"] = float(inner["weight_decay"]) * (
            recipe.reg_factor
        )
    return config


def compile_like(model: keras.Model, template: keras.Model, recipe: Any):
    """Compiles `model` with the template's loss, metrics and settings."""
    optimizer = keras.optimizers.deserialize(optimizer_config(template, recipe))
    config = template.get_compile_config() or {}
    try:
        config = keras.saving.deserialize_keras_object(config)
    except Exception:  # noqa: BLE001 (an unserializable loss: keep the object)
        config = {"loss": template.loss}
    config = dict(config or {})
    config["optimizer"] = optimizer
    if not config.get("loss"):
        config["loss"] = template.loss
    if getattr(recipe, "loss", None):  # a corrected head: a new loss
        config["loss"] = recipe.loss
        for key in ("metrics", "weighted_metrics"):
            config[key] = _classification_metrics(config.get(key))
    model.compile(**config)
    return model


def _classification_metrics(metrics: Any) -> Any:
    """The metrics that still mean something once a regression loss on
    class labels became a cross-entropy: regression metrics are dropped."""
    if not metrics or not isinstance(metrics, (list, tuple)):
        return metrics
    kept = []
    for metric in metrics:
        name = str(getattr(metric, "name", metric)).lower()
        if not any(k in name for k in _REGRESSION_KEYS + ("error", "r2")):
            kept.append(metric)
    return kept or None


def current_learning_rate(template: keras.Model, recipe: Any) -> float:
    """The learning rate the recipe trains with: a number, for a schedule
    its reference rate (`_rates`)."""
    try:
        return _rates.current(keras.optimizers.serialize(template.optimizer),
                              recipe)
    except _rates.ScheduleError as e:
        raise Unapplicable(f"{e}: scale the learning rate by hand") from e


def learning_rate_schedule(template: keras.Model) -> dict | None:
    """The template optimizer's serialized schedule, or None."""
    return _rates.schedule_config(
        keras.optimizers.serialize(template.optimizer))


def check_rate(template: keras.Model, rate: float) -> None:
    """`Unapplicable` when the template's schedule cannot be scaled to
    the reference rate `rate`."""
    schedule = learning_rate_schedule(template)
    if schedule is not None:
        try:
            _rates.scaled(schedule, rate)
        except _rates.ScheduleError as e:
            raise Unapplicable(f"{e}: scale the schedule by hand") from e


def output_fix(template: Any, loss_name: str, from_logits: bool,
               y: Any) -> dict:
    """The output-layer config change that matches the loss, or {}."""
    dense = [
        layer for layer in output_layers(template)
        if has_units(layer.get_config())
    ]
    if len(dense) != 1:
        return {}
    config = dense[0].get_config()
    act = activation_name(config.get("activation"))
    units = int(config.get("units", config.get("filters", 0)))
    fix: dict = {}
    if any(k in loss_name for k in _LOSSES_CATEGORICAL):
        want = "linear" if from_logits else "softmax"
        classes = units
        if "sparse" in loss_name and isinstance(y, np.ndarray) and y.size:
            if y.dtype.kind in "iuf" and np.all(np.isfinite(y)):
                classes = max(int(np.max(y)) + 1, 2)
        elif isinstance(y, np.ndarray) and y.ndim >= 2:
            classes = int(y.shape[-1])
        if classes != units:
            fix["units"] = classes
    elif "binary" in loss_name or "hinge" in loss_name:
        want = "linear" if from_logits or "hinge" in loss_name else "sigmoid"
    elif any(k in loss_name for k in _REGRESSION_KEYS):
        from keras_training_kit.diagnosis.rules import target_statistics

        stats = target_statistics(np.asarray(y)[:4096]) if isinstance(
            y, np.ndarray) else None
        classes = _class_labels(stats, units)
        if classes:  # class ids are not distances: a cross-entropy
            fix = {"loss": "sparse_categorical_crossentropy",
                   "activation": "softmax"}
            if classes != units:
                fix["units"] = classes
            return fix
        if act == "softmax" and _one_hot(stats):
            return {"loss": "categorical_crossentropy"}
        want = "linear"
    else:
        return {}
    if act != want:
        fix["activation"] = want
    return fix


def _class_labels(stats: dict | None, units: int) -> int | None:
    """C when a regression loss is given class ids: Keras-style integer ids
    0..C-1 (the diagnosis' rule), or integer targets into a multi-unit
    output; else None. `stats`: `rules.target_statistics` of the
    targets."""
    from keras_training_kit.diagnosis.rules.head import class_ids

    if not stats:
        return None
    if units == 1:
        return class_ids(stats)
    if units > 1 and len(stats["shape"]) == 1 and stats["integer"] and (
        stats["min"] >= 0
    ):
        return max(units, int(stats["max"]) + 1)
    return None


def _one_hot(stats: dict | None) -> bool:
    """One-hot rows: 0/1 targets over several columns, each row summing
    to 1 (from `rules.target_statistics`)."""
    return bool(stats and len(stats["shape"]) == 2 and stats["shape"][1] > 1
                and stats["integer"] and stats["min"] >= 0
                and stats["max"] <= 1 and stats["row_sums_one"])
