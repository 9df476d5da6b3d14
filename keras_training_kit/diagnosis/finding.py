"""`Finding`: one diagnosis result, with its evidence and the course's remedy.

Every diagnosis rule returns `Finding` objects; the report, the JSON export,
the TensorBoard text and the plot markers are all built from them, so the
wording of a code lives in one table here, never in the rules.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

# The contract's vocabulary (API.md), plus `high_initial_loss`: the
# pre-training check of the first loss against the chance level.
CODES = (
    "healthy",
    "underfitting",
    "overfitting",
    "lr_too_high",
    "lr_too_low",
    "noisy_loss",
    "diverged",
    "vanishing_gradients",
    "exploding_gradients",
    "dead_units",
    "saturated_units",
    "unscaled_inputs",
    "high_initial_loss",
)

SEVERITIES = ("info", "warning", "error")

# Remedies in the course's words (COURSE.md, "About Training").
ADVICE = {
    "healthy": "Nothing to fix: keep babysitting the loss curves.",
    "underfitting": (
        "Large bias: the model cannot fit even the training data. Use a "
        "bigger model (more units or layers), add features, train longer, "
        "and reduce regularization if any."
    ),
    "overfitting": (
        "Large variance: more data (or data augmentation), regularization "
        "(L2 `ktk.regularizers.L2` / L1), dropout (`ktk.layers.Dropout`), "
        "and early stopping (`ktk.callbacks.EarlyStopping`) at the best "
        "epoch."
    ),
    "lr_too_high": (
        "The learning rate is too large: the loss oscillates or explodes. "
        "Reduce it (e.g. by a factor of 3-10) or decay it (reduce by a "
        "factor every few epochs, 1/t decay `ktk.schedules.InverseSqrtDecay`);"
        " an adaptive optimizer (Adagrad, RMSProp, Adam) also helps."
    ),
    "lr_too_low": (
        "The learning rate is too small: the loss decays slowly. Increase "
        "it; run the LR range test (`ktk.callbacks.LRFinder`) to pick it; "
        "momentum or Adam also speed up training."
    ),
    "noisy_loss": (
        "The per-batch loss scatters widely: the batch is probably too "
        "small. Use a larger batch size (or a smaller learning rate)."
    ),
    "diverged": (
        "The loss became NaN or Inf: the learning rate is far too high or "
        "the numerics broke. Reduce the learning rate, clip gradients "
        "(`clipnorm`), check the inputs for NaN/Inf and standardize them."
    ),
    "vanishing_gradients": (
        "Gradients vanish in the early layers: use ReLU (or Leaky ReLU, "
        "Maxout, ELU) instead of sigmoid/tanh, add batch normalization, "
        "use a shallower network or residual connections."
    ),
    "exploding_gradients": (
        "Gradients explode: clip them (`clipnorm`/`global_clipnorm`), "
        "reduce the learning rate, add batch normalization, check the "
        "initialization scale and standardize the inputs."
    ),
    "dead_units": (
        "ReLU units never fire: use Leaky ReLU (`max(0.1x, x)`) or ELU, a "
        "lower learning rate, and a proper initialization (He, zero or "
        "small positive bias)."
    ),
    "saturated_units": (
        "Sigmoid/tanh units are pinned at their limits, where gradients "
        "vanish: add batch normalization, scale the inputs, use a smaller "
        "initialization, or switch to ReLU."
    ),
    "unscaled_inputs": (
        "Input features have very different scales or are far from zero "
        "mean: standardize each dimension `x <- (x - m_i) / sigma_i` "
        "(`keras.layers.Normalization` adapted on the training data); "
        "gradient descent converges much faster."
    ),
    "high_initial_loss": (
        "The loss before training is far above the chance level: check the "
        "initialization scale, the output activation against the loss "
        "(`from_logits`), the label encoding and the input scaling."
    ),
}

# What each code says, filled from its evidence.
SUMMARY = {
    "healthy": "no problem found in {epochs} epochs (final loss {loss:.4g})",
    "underfitting": (
        "loss stays high: {loss_first:.4g} -> {loss_last:.4g}, "
        "{ratio:.2f} of the reference loss {reference:.4g} ({reference_kind})"
    ),
    "overfitting": (
        "val_loss {val_loss_best:.4g} -> {val_loss_last:.4g} while loss "
        "{loss_best:.4g} -> {loss_last:.4g} (best epoch {best_epoch})"
    ),
    "lr_too_high": "{reason}",
    "lr_too_low": (
        "loss falls only {mean_relative_drop:.2%} per epoch: "
        "{loss_first:.4g} -> {loss_last:.4g}, still {ratio:.2f} of the "
        "reference loss {reference:.4g} ({reference_kind})"
    ),
    "noisy_loss": (
        "per-batch losses scatter {noise:.2f} (std / mean around their "
        "trend, median over {epochs_used} epochs of {batches} batches)"
    ),
    "diverged": "{where} became {value}",
    "vanishing_gradients": (
        "gradient RMS of the first layer `{first_layer}` is {ratio:.2g} x "
        "that of the last layer `{last_layer}`"
    ),
    "exploding_gradients": "{reason}",
    "dead_units": (
        "{fraction:.0%} of the units of `{layer}` never fire on the probe "
        "batch ({dead} of {units})"
    ),
    "saturated_units": (
        "{fraction:.0%} of the outputs of `{layer}` ({activation}) are "
        "pinned at their limits"
    ),
    "unscaled_inputs": "{reason}",
    "high_initial_loss": (
        "initial loss {initial_loss:.4g} is {ratio:.1f} x the chance level "
        "{chance_loss:.4g}"
    ),
}


def _plain(value: Any) -> Any:
    """JSON-friendly evidence: numpy scalars to Python, NaN/Inf to text."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        if hasattr(value, "tolist"):
            value = value.tolist()
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass
class Finding:
    """One diagnosis result.

    Attributes:
        code: one of `CODES`, e.g. `"overfitting"`.
        severity: `"info"` (only for `healthy`), `"warning"` or `"error"`.
        epoch: 0-based epoch where the problem begins (as in Keras
            callbacks), or `None` when it concerns the whole run.
        evidence: the numbers behind the finding.
        advice: the remedy, in the course's words. Defaults to the
            code's standard remedy.

    Example:

    >>> f = Finding("diverged", "error", 3, {"where": "loss", "value": "nan"})
    >>> print(f)  # doctest: +ELLIPSIS
    [error] diverged at epoch 3: loss became nan
      Remedy: ...
    """

    code: str
    severity: str
    epoch: int | None = None
    evidence: dict = dataclasses.field(default_factory=dict)
    advice: str = ""

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(
                f"Argument `code` must be one of {CODES}. "
                f"Received: code={self.code!r}"
            )
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Argument `severity` must be one of {SEVERITIES}. "
                f"Received: severity={self.severity!r}"
            )
        if self.epoch is not None:
            self.epoch = int(self.epoch)
        self.evidence = _plain(dict(self.evidence))
        if not self.advice:
            self.advice = ADVICE[self.code]

    @property
    def summary(self) -> str:
        """One line: what was seen, with its numbers."""
        try:
            return SUMMARY[self.code].format(**self.evidence)
        except (KeyError, ValueError, TypeError, IndexError):
            shown = ", ".join(f"{k}={v}" for k, v in self.evidence.items())
            return shown or self.code

    def to_dict(self) -> dict:
        """A JSON-serializable dict of the five fields."""
        return {
            "code": self.code,
            "severity": self.severity,
            "epoch": self.epoch,
            "evidence": _plain(self.evidence),
            "advice": self.advice,
        }

    def __str__(self) -> str:
        where = "" if self.epoch is None else f" at epoch {self.epoch}"
        if self.code == "overfitting" and self.epoch is not None:
            where = f" from epoch {self.epoch}"
        return (
            f"[{self.severity}] {self.code}{where}: {self.summary}\n"
            f"  Remedy: {self.advice}"
        )
