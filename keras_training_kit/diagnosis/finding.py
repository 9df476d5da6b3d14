"""`Finding`: one diagnosis result, with its evidence and the course's remedy.

Every diagnosis rule returns `Finding` objects; the report, the JSON export,
the TensorBoard text and the plot markers are all built from them, so the
wording of a code lives in one table here, never in the rules.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_training_kit.diagnosis._json import plain as _plain
from keras_training_kit.diagnosis.remedy import (  # noqa: F401
    REMEDIES,
    REMEDY_NAMES,
    Remedy,
)

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
    "loss_output_mismatch",
    "unscaled_targets",
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
    "loss_output_mismatch": (
        "The output layer does not fit the loss or the targets: use softmax "
        "over C >= 2 units with a categorical cross-entropy, one sigmoid "
        "unit with binary cross-entropy, a linear output for regression, "
        "and `from_logits=True` only on a linear output."
    ),
    "unscaled_targets": (
        "Regression targets are on a huge scale: standardize them "
        "`y <- (y - m) / sigma` for training and undo it on predictions, "
        "or predict log-targets."
    ),
}

# What each code says, filled from its evidence.
SUMMARY = {
    "healthy": "no problem found in {epochs} epochs (final loss {loss:.4g})",
    "underfitting": (
        "loss stays at {ratio:.2f} of the {reference_kind} loss "
        "{reference:.4g} ({loss_first:.4g} -> {loss_last:.4g}) and has "
        "levelled off (trend z = {trend_z:.2f})"
    ),
    "overfitting": (
        "val_loss {val_loss_best:.4g} -> {val_loss_last:.4g} while loss "
        "{loss_best:.4g} -> {loss_last:.4g} (best epoch {best_epoch})"
    ),
    "lr_too_high": "{reason}",
    "lr_too_low": (
        "loss {loss_first:.4g} -> {loss_last:.4g} is still {ratio:.2f} of "
        "the {reference_kind} loss {reference:.4g}: {why}"
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
    "loss_output_mismatch": "{reason}",
    "unscaled_targets": "{reason}",
}


def _fallback(ev: dict, code: str) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in ev.items()
                      if not isinstance(v, (list, dict)))
    return shown or code


@dataclasses.dataclass(frozen=True)
class Finding:
    """One diagnosis result (immutable).

    Attributes:
        code: one of `CODES`, e.g. `"overfitting"`.
        severity: `"info"` (only for `healthy`), `"warning"` or `"error"`.
        epoch: 0-based epoch where the problem begins (as in Keras
            callbacks), or `None` when it concerns the whole run. Text
            shows it 1-based, as Keras' progress bar does.
        evidence: the numbers behind the finding.
        advice: the remedy, in the course's words. Defaults to the
            code's standard remedy.
        remedies: machine-readable remedies (`Remedy`), most promising
            first. Defaults to the code's course remedies (`REMEDIES`).

    Example:

    >>> f = Finding("diverged", "error", 3, {"where": "loss", "value": "nan"})
    >>> print(f)  # doctest: +ELLIPSIS
    [error] diverged at epoch 4: loss became nan
      Remedy: ...
    >>> [r.name for r in f.remedies]
    ['clean_inputs', 'lower_learning_rate', 'clip_gradients']
    """

    code: str
    severity: str
    epoch: int | None = None
    evidence: dict = dataclasses.field(default_factory=dict)
    advice: str = ""
    remedies: tuple = None  # type: ignore[assignment]

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
        set_ = object.__setattr__
        if self.epoch is not None:
            set_(self, "epoch", int(self.epoch))
        set_(self, "evidence", _plain(dict(self.evidence)))
        if not self.advice:
            set_(self, "advice", ADVICE[self.code])
        remedies = REMEDIES[self.code] if self.remedies is None else (
            self.remedies
        )
        set_(self, "remedies", tuple(
            r if isinstance(r, Remedy) else Remedy(**r) for r in remedies
        ))

    def replace(self, **changes: Any) -> Finding:
        """A copy with some fields changed (findings are immutable)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        """The inverse of `to_dict`."""
        return cls(**data)

    @property
    def summary(self) -> str:
        """One line: what was seen, with its numbers."""
        ev = self.evidence
        try:
            text = SUMMARY[self.code].format(**ev)
        except KeyError:
            # Another way to the same code (e.g. `underfitting` from the
            # nearest-neighbour yardstick) says what it saw in its reason.
            if not isinstance(ev.get("reason"), str):
                return _fallback(ev, self.code)
            text = ev["reason"]
        except (ValueError, TypeError, IndexError):
            return _fallback(ev, self.code)
        extra = []
        if ev.get("cause"):
            extra.append(f"cause: {ev['cause']}")
        if isinstance(ev.get("learning_rate"), (int, float)):
            extra.append(f"learning rate {ev['learning_rate']:.3g}")
        if isinstance(ev.get("update_ratio"), (int, float)):
            extra.append(f"update/weight {ev['update_ratio']:.2g} per step")
        return text + (f" ({'; '.join(extra)})" if extra else "")

    def to_dict(self) -> dict:
        """A JSON-serializable dict of the six fields."""
        return {
            "code": self.code,
            "severity": self.severity,
            "epoch": self.epoch,
            "evidence": _plain(self.evidence),
            "advice": self.advice,
            "remedies": [r.to_dict() for r in self.remedies],
        }

    def __str__(self) -> str:
        # 1-based, as Keras' progress bar prints epochs.
        where = "" if self.epoch is None else f" at epoch {self.epoch + 1}"
        if self.code == "overfitting" and self.epoch is not None:
            where = f" from epoch {self.epoch + 1}"
        return (
            f"[{self.severity}] {self.code}{where}: {self.summary}\n"
            f"  Remedy: {self.advice}"
        )
