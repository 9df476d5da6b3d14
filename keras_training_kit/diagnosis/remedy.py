"""`Remedy`: a machine-readable course remedy, and the remedies per code.

`Finding.remedies` holds them, most promising first; `ktk.diagnosis.repair`
applies them by name to a rebuilt copy of the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_training_kit.diagnosis._json import plain as _plain


@dataclasses.dataclass(frozen=True)
class Remedy:
    """One machine-readable course remedy, applied by `ktk.diagnosis.repair`.

    Attributes:
        name: what to change, e.g. `"lower_learning_rate"` (see `REMEDIES`).
        params: its parameters, e.g. `{"factor": 0.1}`.
        description: one sentence for people.

    Example:

    >>> Remedy("lower_learning_rate", {"factor": 0.1}, "divide by 10").name
    'lower_learning_rate'
    """

    name: str
    params: dict = dataclasses.field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.name not in REMEDY_NAMES:
            raise ValueError(
                f"Argument `name` must be one of {REMEDY_NAMES}. "
                f"Received: name={self.name!r}"
            )
        object.__setattr__(self, "params", dict(self.params))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "params": _plain(self.params),
            "description": self.description,
        }


REMEDY_NAMES = (
    "lower_learning_rate",
    "raise_learning_rate",
    "clip_gradients",
    "larger_batch",
    "standardize_inputs",
    "standardize_targets",
    "batch_normalization",
    "leaky_relu",
    "relu_activations",
    "scaled_initialization",
    "reinitialize",
    "bigger_model",
    "more_epochs",
    "less_regularization",
    "l2",
    "dropout",
    "early_stopping",
    "fix_output_layer",
    "clean_inputs",
)


def _r(name: str, description: str, **params: Any) -> Remedy:
    return Remedy(name, params, description)


# The course's remedies per code, most promising first (issue "repair").
REMEDIES: dict[str, tuple[Remedy, ...]] = {
    "healthy": (),
    "underfitting": (
        _r("bigger_model", "twice as many units per hidden layer", width=2),
        _r("more_epochs", "train twice as long", factor=2),
        _r("less_regularization", "divide L1/L2/dropout by 10", factor=0.1),
        _r("raise_learning_rate", "LR range test, else x 10", factor=10.0),
    ),
    "overfitting": (
        _r("early_stopping", "stop at the best epoch, restore its weights",
           patience=5),
        _r("l2", "L2 on every kernel (`penalize`)", l2=1e-3),
        _r("dropout", "dropout after every hidden layer", rate=0.3),
    ),
    "lr_too_high": (
        _r("lower_learning_rate", "LR range test, else / 10", factor=0.1),
        _r("clip_gradients", "clip the global gradient norm", clipnorm=1.0),
    ),
    "lr_too_low": (
        _r("raise_learning_rate", "LR range test, else x 10", factor=10.0),
    ),
    "noisy_loss": (
        _r("larger_batch", "four times the batch size", factor=4),
        _r("lower_learning_rate", "divide the learning rate by 3",
           factor=1 / 3),
    ),
    "diverged": (
        _r("clean_inputs", "drop rows with NaN/Inf inputs"),
        _r("lower_learning_rate", "LR range test, else / 10", factor=0.1),
        _r("clip_gradients", "clip the global gradient norm", clipnorm=1.0),
    ),
    "vanishing_gradients": (
        _r("batch_normalization", "BN after each dense/conv layer, before "
           "the nonlinearity"),
        _r("relu_activations", "ReLU (He-initialized) instead of sigmoid/tanh"),
        _r("scaled_initialization", "He/Glorot initialization"),
    ),
    "exploding_gradients": (
        _r("clip_gradients", "clip the global gradient norm", clipnorm=1.0),
        _r("lower_learning_rate", "LR range test, else / 10", factor=0.1),
        _r("batch_normalization", "BN after each dense/conv layer, before "
           "the nonlinearity"),
        _r("scaled_initialization", "He/Glorot initialization (Glorot & "
           "Bengio 2010; He et al. 2015): weights too large at the start "
           "make gradients grow layer by layer"),
    ),
    "dead_units": (
        _r("leaky_relu", "the course's Leaky ReLU max(0.1x, x)", alpha=0.1),
        _r("reinitialize", "He initialization with zero biases"),
        _r("lower_learning_rate", "divide the learning rate by 10",
           factor=0.1),
    ),
    "saturated_units": (
        _r("batch_normalization", "BN after each dense/conv layer, before "
           "the nonlinearity"),
        _r("relu_activations", "ReLU (He-initialized) instead of sigmoid/tanh"),
        _r("scaled_initialization", "He/Glorot initialization"),
    ),
    "unscaled_inputs": (
        _r("standardize_inputs", "a Normalization layer adapted on the "
           "training inputs, prepended"),
    ),
    "high_initial_loss": (
        _r("fix_output_layer", "match the output layer to the loss"),
        _r("reinitialize", "the output layer redrawn: Glorot kernel, zero "
           "bias (the hidden layers keep their weights)", layers="output"),
        _r("scaled_initialization", "He/Glorot initialization"),
        _r("standardize_inputs", "a Normalization layer adapted on the "
           "training inputs, prepended"),
    ),
    "loss_output_mismatch": (
        _r("fix_output_layer", "match the output layer to the loss"),
    ),
    "unscaled_targets": (
        _r("standardize_targets", "train on standardized targets"),
    ),
}
