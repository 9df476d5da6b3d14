"""The course's remedies: one small function per `Remedy` name.

A `Recipe` is every change made so far to the user's training (the
optimizer, the fit arguments, the data and the architecture); a remedy
returns a new `Recipe` with one more change, and the values it chose, or
raises `Unapplicable` with the reason. Changes compose: the loop builds
each run from the whole recipe, so "standardize inputs" then "lower the
learning rate" is one model with both.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from keras_training_kit.diagnosis.finding import REMEDIES
from keras_training_kit.diagnosis.repair._surgery import (
    Unapplicable,
    activation_name,
    check_rate,
    current_learning_rate,
    has_units,
    learning_rate_schedule,
    output_layer_names,
    output_layers,
    walk,
)

# Layers whose config the architecture remedies change.
_ARCHITECTURE = (
    "batch_normalization",
    "leaky_relu",
    "relu_activations",
    "scaled_initialization",
    "reinitialize",
    "bigger_model",
    "dropout",
    "l2",
    "less_regularization",
    "fix_output_layer",
    "standardize_inputs",
    "standardize_targets",
)
_SATURATING = ("sigmoid", "tanh", "hard_sigmoid", "softsign")
# A linear model made deeper gets one hidden ReLU layer of this many units
# (Keras' and scikit-learn's MLP examples use 64-100).
_HIDDEN_UNITS = 64


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every change made to the user's training, composed."""

    learning_rate: float | None = None
    clipnorm: float | None = None
    batch_size: int | None = None
    epochs: int | None = None
    standardize_inputs: bool = False
    standardize_targets: bool = False
    clean_inputs: bool = False
    batch_norm: bool = False
    relu: bool = False  # hidden sigmoid/tanh -> ReLU
    leaky_alpha: float | None = None  # hidden ReLU -> LeakyReLU(alpha)
    initializer: str | None = None  # "scaled_initialization"/"reinitialize"
    initializer_layers: str = "all"  # "all" or "output": which are redrawn
    width: int = 1
    hidden: int = 0  # units of a hidden layer added before the output
    reg_factor: float = 1.0
    l2: float = 0.0
    dropout: float = 0.0
    early_stopping: int | None = None  # patience
    fix_output: bool = False
    loss: str | None = None  # the loss of a corrected head, when it changed
    applied: tuple = ()  # (name, params) of each kept change, in order

    def with_change(self, name: str, params: dict, **changes: Any) -> Recipe:
        return dataclasses.replace(
            self, applied=(*self.applied, (name, dict(params))), **changes
        )

    @property
    def changes_architecture(self) -> bool:
        return any(name in _ARCHITECTURE for name, _ in self.applied)

    @property
    def redraws_initialization(self) -> bool:
        return self.initializer is not None


_DESCRIPTIONS = {
    r.name: r.description for rs in REMEDIES.values() for r in rs
}


def _hidden_layers(ctx: Any) -> list:
    outputs = output_layer_names(ctx.template)
    return [layer for layer in walk(ctx.template) if layer.name not in outputs]


def _needs_rebuild(ctx: Any, remedy: Any) -> None:
    if not ctx.rebuildable:
        what = remedy.description or _DESCRIPTIONS.get(remedy.name, "")
        raise Unapplicable(
            f"cannot rebuild {ctx.rebuild_problem}: apply by hand: "
            f"{remedy.name}" + (f" ({what})" if what else "")
            + (f" [{ctx.rebuild_detail}]" if ctx.rebuild_detail else "")
        )


# ------------------------------------------------------------- optimizer


def lower_learning_rate(recipe, params, ctx, remedy):
    return _new_rate(recipe, params, ctx, remedy, 0.1, 1e-4)


def raise_learning_rate(recipe, params, ctx, remedy):
    return _new_rate(recipe, params, ctx, remedy, 10.0, 1e3)


def _new_rate(recipe, params, ctx, remedy, default, reach):
    """The LR range test's pick between the current rate and `reach` times
    it, else the remedy's factor. A schedule (no range test: it has no one
    rate) is scaled as a whole by the factor."""
    lr = current_learning_rate(ctx.template, recipe)
    factor = float(params.get("factor", default))
    schedule = learning_rate_schedule(ctx.template) is not None
    chosen, how = (None, "") if schedule else ctx.lr_range_test(
        recipe, *sorted((lr, lr * reach)))
    if chosen is None or not (chosen < lr * 0.9 if reach < 1
                              else chosen > lr * 1.1):
        chosen, how = lr * factor, f"x {factor:.3g}" + (
            " (the whole schedule)" if schedule else "")
    check_rate(ctx.template, chosen)
    out = {"learning_rate": chosen, "from": lr, "how": how}
    return recipe.with_change(remedy.name, out, learning_rate=chosen), out


def clip_gradients(recipe, params, ctx, remedy):
    clip = float(params.get("clipnorm", 1.0))
    inner = ctx.optimizer_config["config"]
    already = recipe.clipnorm or inner.get("global_clipnorm") or inner.get(
        "clipnorm"
    )
    if already and already <= clip:
        clip = float(already) / 10.0
    out = {"global_clipnorm": clip}
    return recipe.with_change(remedy.name, out, clipnorm=clip), out


# ----------------------------------------------------------- fit and data


def larger_batch(recipe, params, ctx, remedy):
    batch = recipe.batch_size or ctx.batch_size
    if batch >= ctx.n_train:
        raise Unapplicable(
            f"the batch ({batch}) already holds the whole training set"
        )
    new = min(int(batch * int(params.get("factor", 4))), ctx.n_train)
    out = {"batch_size": new, "from": batch}
    return recipe.with_change(remedy.name, out, batch_size=new), out


def more_epochs(recipe, params, ctx, remedy):
    epochs = recipe.epochs or ctx.epochs
    new = int(math.ceil(epochs * float(params.get("factor", 2))))
    out = {"epochs": new, "from": epochs}
    return recipe.with_change(remedy.name, out, epochs=new), out


def early_stopping(recipe, params, ctx, remedy):
    if recipe.early_stopping is not None:
        raise Unapplicable("early stopping is already on")
    if not ctx.objective.startswith("val_"):
        raise Unapplicable("early stopping needs a validation objective")
    patience = int(params.get("patience", 5))
    out = {"patience": patience, "monitor": ctx.objective,
           "restore_best_weights": True}
    return recipe.with_change(remedy.name, out, early_stopping=patience), out


def clean_inputs(recipe, params, ctx, remedy):
    if recipe.clean_inputs:
        raise Unapplicable("the inputs were cleaned already")
    bad = ctx.count_non_finite()
    if not bad:
        raise Unapplicable("no NaN/Inf in the inputs or targets")
    out = {"dropped_rows": bad}
    return recipe.with_change(remedy.name, out, clean_inputs=True), out


def standardize_inputs(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    if recipe.standardize_inputs:
        raise Unapplicable("the inputs are standardized already")
    if ctx.x_matrix is None or len(ctx.template.inputs) != 1:
        raise Unapplicable(
            "standardization needs a single numeric input array"
        )
    out = {"layer": "keras.layers.Normalization", "adapted_on": "x"}
    return recipe.with_change(
        remedy.name, out, standardize_inputs=True
    ), out


def standardize_targets(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    if recipe.standardize_targets:
        raise Unapplicable("the targets are standardized already")
    y = ctx.y
    if not (
        isinstance(y, np.ndarray)
        and y.dtype.kind == "f"
        and (y.ndim == 1 or y.shape[-1] == 1)
        and len(ctx.template.outputs) == 1
    ):
        raise Unapplicable("standardization needs one float target column")
    mean, std = float(np.nanmean(y)), float(np.nanstd(y))
    if not std > 0:
        raise Unapplicable("the targets are constant")
    out = {"mean": mean, "std": std, "output": "keras.layers.Rescaling"}
    return recipe.with_change(
        remedy.name, out, standardize_targets=True
    ), out


# ---------------------------------------------------------- architecture


def _with_activation(ctx, kinds) -> list[str]:
    return [
        layer.name
        for layer in _hidden_layers(ctx)
        if activation_name(getattr(layer, "activation", None)) in kinds
        or (
            "relu" in kinds
            and type(layer).__name__ == "ReLU"
        )
    ]


def batch_normalization(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    if recipe.batch_norm:
        raise Unapplicable("batch normalization is in place already")
    layers = [
        layer.name for layer in _hidden_layers(ctx)
        if has_units(layer.get_config())
    ]
    if not layers:
        raise Unapplicable("no hidden dense/conv layer to normalize")
    out = {"after": layers}
    return recipe.with_change(remedy.name, out, batch_norm=True), out


def relu_activations(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    layers = _with_activation(ctx, _SATURATING)
    if not layers or recipe.relu:
        raise Unapplicable("no hidden sigmoid/tanh layer to change")
    out = {"layers": layers, "activation": "relu", "kernels": "he_normal"}
    return recipe.with_change(remedy.name, out, relu=True), out


def leaky_relu(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    layers = _with_activation(ctx, ("relu",))
    if recipe.relu:  # sigmoid/tanh became ReLU
        layers += _with_activation(ctx, _SATURATING)
    if not layers or recipe.leaky_alpha is not None:
        raise Unapplicable("no hidden ReLU layer to change")
    alpha = float(params.get("alpha", 0.1))
    out = {"layers": layers, "negative_slope": alpha}
    return recipe.with_change(remedy.name, out, leaky_alpha=alpha), out


def _initialization(recipe, params, ctx, remedy, kind):
    _needs_rebuild(ctx, remedy)
    layers = params.get("layers", "all")
    if layers not in ("all", "output"):
        raise ValueError(
            "Argument `layers` of the initialization remedies must be "
            f"'all' or 'output'. Received: layers={layers!r}"
        )
    if recipe.initializer == kind and (
        recipe.initializer_layers == "all" or layers == "output"
    ):
        raise Unapplicable(f"{remedy.name} was applied already")
    if layers == "output":
        out = {"layers": sorted(output_layer_names(ctx.template)),
               "kernels": "glorot_uniform"}
    else:
        out = {"kernels": "he_normal (ReLU family) / glorot_uniform"}
    if kind == "reinitialize":
        out["biases"] = "zeros"
    return recipe.with_change(remedy.name, out, initializer=kind,
                              initializer_layers=layers), out


def scaled_initialization(recipe, params, ctx, remedy):
    return _initialization(recipe, params, ctx, remedy, remedy.name)


def reinitialize(recipe, params, ctx, remedy):
    return _initialization(recipe, params, ctx, remedy, remedy.name)


def bigger_model(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    layers = [
        layer.name for layer in _hidden_layers(ctx)
        if has_units(layer.get_config())
    ]
    if not layers:
        # Nothing to widen (a linear model): deeper instead, one hidden
        # ReLU layer before a dense output; applied again, it widens that.
        heads = [
            layer.name for layer in output_layers(ctx.template)
            if "units" in layer.get_config()
        ]
        if len(heads) != 1:
            raise Unapplicable("no hidden dense/conv layer to widen, and "
                               "no single dense output to put one before")
        if not recipe.hidden:
            units = int(params.get("hidden", _HIDDEN_UNITS))
            out = {"hidden_units": units, "before": heads[0]}
            return recipe.with_change(remedy.name, out, hidden=units), out
        layers = [f"{heads[0]}_hidden"]
    width = recipe.width * int(params.get("width", 2))
    out = {"width": width, "layers": layers}
    return recipe.with_change(remedy.name, out, width=width), out


def less_regularization(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    factor = float(params.get("factor", 0.1))
    if not ctx.regularized:
        raise Unapplicable(
            "the model has no L1/L2 penalty, dropout or weight decay"
        )
    out = {"factor": recipe.reg_factor * factor}
    changes = {"reg_factor": recipe.reg_factor * factor}
    if recipe.l2:
        changes["l2"] = recipe.l2 * factor
    if recipe.dropout:
        changes["dropout"] = recipe.dropout * factor
    return recipe.with_change(remedy.name, out, **changes), out


def l2(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    if recipe.l2:
        raise Unapplicable("L2 is on every kernel already")
    value = float(params.get("l2", 1e-3))
    out = {"l2": value, "via": "ktk.regularizers.penalize"}
    return recipe.with_change(remedy.name, out, l2=value), out


def dropout(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    if recipe.dropout:
        raise Unapplicable("dropout is in place already")
    rate = float(params.get("rate", 0.3))
    out = {"rate": rate, "after": "every hidden dense/conv layer"}
    return recipe.with_change(remedy.name, out, dropout=rate), out


def fix_output_layer(recipe, params, ctx, remedy):
    _needs_rebuild(ctx, remedy)
    if recipe.fix_output:
        raise Unapplicable("the output layer was fixed already")
    fix = ctx.output_fix()
    if not fix:
        raise Unapplicable("the output layer already matches the loss")
    if "loss" in fix and ctx.objective.removeprefix("val_") != "loss" and (
        "acc" not in ctx.objective
    ):
        raise Unapplicable(
            f"the fix changes the loss to {fix['loss']}, and the objective "
            f"`{ctx.objective}` does not survive that: apply by hand"
        )
    return recipe.with_change(
        remedy.name, fix, fix_output=True, loss=fix.get("loss")
    ), dict(fix)


REMEDY_FUNCTIONS: dict[str, Callable] = {
    "lower_learning_rate": lower_learning_rate,
    "raise_learning_rate": raise_learning_rate,
    "clip_gradients": clip_gradients,
    "larger_batch": larger_batch,
    "standardize_inputs": standardize_inputs,
    "standardize_targets": standardize_targets,
    "batch_normalization": batch_normalization,
    "leaky_relu": leaky_relu,
    "relu_activations": relu_activations,
    "scaled_initialization": scaled_initialization,
    "reinitialize": reinitialize,
    "bigger_model": bigger_model,
    "more_epochs": more_epochs,
    "less_regularization": less_regularization,
    "l2": l2,
    "dropout": dropout,
    "early_stopping": early_stopping,
    "fix_output_layer": fix_output_layer,
    "clean_inputs": clean_inputs,
}


def apply(remedy: Any, recipe: Recipe, ctx: Any) -> tuple[Recipe, dict]:
    """`recipe` with `remedy` applied, and the values it chose."""
    function = REMEDY_FUNCTIONS.get(remedy.name)
    if function is None:
        raise Unapplicable(f"no automatic remedy `{remedy.name}`")
    return function(recipe, dict(remedy.params), ctx, remedy)
