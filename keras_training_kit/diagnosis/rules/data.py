"""Rules over the data: reference losses, input and target scales.

`constant_predictor_loss` and `chance_loss` give the references the curve
rules compare with; `input_statistics` / `target_statistics` summarize a
sample of the data (plain numbers for the `RunRecord`);
`check_unscaled_inputs`, `check_unscaled_targets` and `check_initial_loss`
judge them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_training_kit.diagnosis.finding import Finding
from keras_training_kit.diagnosis.rules import thresholds as T
from keras_training_kit.diagnosis.rules._stats import arr

REGRESSION_LOSSES = (
    "mean_squared_error",
    "mean_absolute_error",
    "huber",
    "log_cosh",
    "mean_absolute_percentage_error",
)
CROSS_ENTROPIES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "categorical_focal_crossentropy",
    "binary_focal_crossentropy",
)

_ALIASES = {
    "mse": "mean_squared_error",
    "meansquarederror": "mean_squared_error",
    "mae": "mean_absolute_error",
    "meanabsoluteerror": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "meanabsolutepercentageerror": "mean_absolute_percentage_error",
    "huberloss": "huber",
    "logcosh": "log_cosh",
    "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
    "categoricalcrossentropy": "categorical_crossentropy",
    "binarycrossentropy": "binary_crossentropy",
    "categoricalfocalcrossentropy": "categorical_focal_crossentropy",
    "binaryfocalcrossentropy": "binary_focal_crossentropy",
}


def loss_name(loss: Any) -> str | None:
    """A canonical lowercase name for a compiled loss, or None."""
    if loss is None or isinstance(loss, (list, tuple, dict)):
        return None  # several outputs: no single baseline
    if isinstance(loss, str):
        name = loss
    else:
        fn = getattr(loss, "fn", None)
        name = getattr(fn, "__name__", None) or getattr(loss, "name", None)
        name = name or getattr(loss, "__name__", None)
    if not name:
        return None
    name = str(name).lower()
    return _ALIASES.get(name.replace("_", ""), name)


def from_logits(loss: Any) -> bool | None:
    """The `from_logits` the user gave a cross-entropy loss (None: unknown)."""
    if isinstance(loss, str):
        return False
    try:
        config = loss.get_config()
    except (AttributeError, NotImplementedError, TypeError):
        return None
    value = config.get("from_logits")
    return None if value is None else bool(value)


def constant_predictor_loss(y: Any, loss: Any) -> float | None:
    """The loss of the best constant predictor, from the training targets.

    Class-prior cross-entropy `-sum_c p_c log p_c` for (sparse) categorical
    and binary cross-entropy; the target variance for mean squared error;
    the mean absolute deviation from the median for mean absolute error.
    None for other losses or unusable targets.

    Example:

    >>> round(constant_predictor_loss([0, 1, 1, 1], "binary_crossentropy"), 4)
    0.5623
    """
    name = loss_name(loss)
    if name is None or y is None:
        return None
    try:
        y = np.asarray(y, dtype="float64")
    except (TypeError, ValueError):
        return None
    y = y[np.isfinite(y).reshape(y.shape[0], -1).all(axis=1)] if y.ndim else y
    if y.size == 0:
        return None
    eps = 1e-12
    if name == "sparse_categorical_crossentropy":
        labels = y.reshape(-1)
        if (labels < 0).any() or (labels != np.round(labels)).any():
            return None
        p = np.bincount(labels.astype("int64")) / labels.size
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())
    if name == "categorical_crossentropy":
        p = y.reshape(-1, y.shape[-1]).mean(axis=0)
        p = p[p > eps]
        return float(-(p * np.log(p)).sum())
    if name == "binary_crossentropy":
        if (y < 0).any() or (y > 1).any():
            return None
        p = np.clip(y.reshape(y.shape[0], -1).mean(axis=0), eps, 1 - eps)
        h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
        return float(h.mean())
    flat = y.reshape(y.shape[0], -1)
    if name == "mean_squared_error":
        return float(flat.var(axis=0).mean())
    if name == "mean_absolute_error":
        return float(np.abs(flat - np.median(flat, axis=0)).mean())
    return None


def chance_loss(
    loss: Any, num_outputs: int | None, targets: dict | None = None
) -> float | None:
    """The loss of an untrained net: what "verify loss @ init" expects.

    A freshly initialized net outputs about zero: zero logits, a uniform
    guess, whose cross-entropy is `log C` for C classes (`log 2` per binary
    output). For regression a variance-preserving initialization (Glorot,
    He) gives outputs of mean ~0 and variance ~1, so the expected initial
    loss is `mean(y^2) + 1` for mean squared error and at most
    `mean(|y|) + sqrt(2/pi)` for mean absolute error (from `targets`, the
    `target_statistics` of the training targets). None otherwise.

    Example:

    >>> round(chance_loss("sparse_categorical_crossentropy", 10), 4)
    2.3026
    >>> chance_loss("mse", 1, {"rms": 2.0, "mean_abs": 1.5})
    5.0
    """
    name = loss_name(loss)
    if name is None:
        return None
    if name in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        return math.log(num_outputs) if num_outputs and num_outputs >= 2 \
            else None
    if name == "binary_crossentropy":
        return math.log(2.0) if num_outputs else None
    if not targets:
        return None
    if name == "mean_squared_error" and targets.get("rms") is not None:
        return float(targets["rms"]) ** 2 + 1.0
    if name == "mean_absolute_error" and targets.get("mean_abs") is not None:
        return float(targets["mean_abs"]) + math.sqrt(2.0 / math.pi)
    return None


def input_statistics(x: Any) -> dict | None:
    """Per-feature mean/std (last axis) and NaN/Inf counts of an input
    sample. None for non-numeric or integer inputs (token ids)."""
    try:
        x = np.asarray(x)
    except (TypeError, ValueError):
        return None
    if x.dtype.kind not in "fc" or x.ndim < 2 or x.shape[0] < 2:
        return None
    flat = x.reshape(-1, x.shape[-1]).astype("float64")
    finite = np.isfinite(flat)
    rows_bad = int((~finite.reshape(x.shape[0], -1).all(axis=1)).sum())
    clean = np.where(finite, flat, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nan_to_num(np.nanmean(clean, axis=0))
            std = np.nan_to_num(np.nanstd(clean, axis=0))
    return {
        "mean": mean.tolist(),
        "std": std.tolist(),
        "nonfinite": int(flat.size - finite.sum()),
        "rows_nonfinite": rows_bad,
        "rows": int(x.shape[0]),
    }


def target_statistics(y: Any) -> dict | None:
    """Summary numbers of a target sample (None when not numeric)."""
    try:
        y = np.asarray(y)
    except (TypeError, ValueError):
        return None
    if y.dtype.kind not in "biuf" or y.size == 0:
        return None
    v = y.astype("float64")
    fin = v[np.isfinite(v)]
    if fin.size == 0:
        return None
    integer = bool(np.all(fin == np.round(fin)))
    return {
        "shape": list(y.shape),
        "min": float(fin.min()),
        "max": float(fin.max()),
        "mean": float(fin.mean()),
        "std": float(fin.std()),
        "rms": float(np.sqrt((fin**2).mean())),
        "mean_abs": float(np.abs(fin).mean()),
        "integer": integer,
        "dtype_kind": y.dtype.kind,
        "unique": int(np.unique(fin[:4096]).size),
        "row_sums_one": bool(
            y.ndim >= 2 and np.allclose(v.reshape(-1, y.shape[-1]).sum(1), 1)
        ),
    }


def check_unscaled_inputs(
    mean: Sequence[float], std: Sequence[float]
) -> list[Finding]:
    """`unscaled_inputs`: input scales that hurt gradient descent.

    With feature RMS `r_i = sqrt(m_i^2 + s_i^2)`: a large magnitude
    (`max r_i >= INPUT_RMS_HIGH`), features on very different scales
    (`max r_i / median r_i >= INPUT_SPREAD` with `max r_i >=
    INPUT_RMS_HIGH / 5`), or a mean far off zero relative to its spread
    (`|m_i| > 1` and `|m_i| / s_i > FAR_MEAN`). Inputs in [0, 1] or
    standardized are standard practice and stay silent.
    """
    mean, std = arr(mean), arr(std)
    if mean.size == 0 or mean.size != std.size:
        return []
    rms = np.sqrt(mean**2 + std**2)
    used = rms > 0
    if not used.any():
        return []
    reasons, evidence = [], {}
    top = float(rms.max())
    if top >= T.INPUT_RMS_HIGH:
        reasons.append(f"a feature has RMS {top:.3g}")
        evidence["max_rms"] = top
    spread = top / max(float(np.median(rms[used])), 1e-12)
    if spread >= T.INPUT_SPREAD and top >= T.INPUT_RMS_HIGH / 5:
        reasons.append(f"feature scales differ {spread:.3g}-fold")
        evidence["spread"] = spread
    off = (np.abs(mean) > 1) & (np.abs(mean) > T.FAR_MEAN * (std + 1e-12))
    if off.any():
        i = int(np.argmax(np.where(off, np.abs(mean), 0)))
        reasons.append(
            f"feature {i} has mean {mean[i]:.3g} for a std of {std[i]:.3g}"
        )
        evidence["far_mean"] = float(mean[i])
    if not reasons:
        return []
    shown = min(mean.size, 32)
    evidence.update(
        reason="; ".join(reasons),
        feature_mean=mean[:shown].tolist(),
        feature_std=std[:shown].tolist(),
        features=int(mean.size),
    )
    return [Finding("unscaled_inputs", "warning", None, evidence)]


def check_unscaled_targets(
    targets: dict | None, loss: str | None
) -> list[Finding]:
    """`unscaled_targets`: regression targets on a huge scale.

    For a regression loss, target RMS above `TARGET_RMS_HIGH`.
    """
    if not targets or loss not in REGRESSION_LOSSES:
        return []
    rms = float(targets.get("rms", 0.0))
    if rms <= T.TARGET_RMS_HIGH:
        return []
    evidence = {
        "reason": (
            f"regression targets have RMS {rms:.3g} (range "
            f"{targets['min']:.3g} to {targets['max']:.3g})"
        ),
        "target_rms": rms,
        "target_min": float(targets["min"]),
        "target_max": float(targets["max"]),
    }
    return [Finding("unscaled_targets", "warning", 0, evidence)]


def check_initial_loss(
    initial_loss: float | None, chance: float | None
) -> list[Finding]:
    """`high_initial_loss`: the first loss is far above the chance level.

    `chance` is `chance_loss`: the loss of a freshly initialized net
    (`log C` for C classes, `mean(y^2) + 1` for a mean-squared-error
    regression); above
    `INITIAL_LOSS_RATIO` x that (Karpathy's "verify loss @ init") points to
    a broken initialization or a loss/activation mismatch.
    """
    if initial_loss is None or chance is None or chance <= 0:
        return []
    if not math.isfinite(initial_loss):
        return []
    ratio = float(initial_loss / chance)
    if ratio > T.INITIAL_LOSS_RATIO:
        evidence = {
            "initial_loss": float(initial_loss),
            "chance_loss": float(chance),
            "ratio": ratio,
        }
        return [Finding("high_initial_loss", "warning", 0, evidence)]
    return []
