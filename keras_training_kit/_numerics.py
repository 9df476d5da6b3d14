"""The one NaN/Inf detector of the kit.

`TrainingDiagnosis`, `EarlyStopping`, `LRFinder` and search pruning all
decide "did this run diverge?" with these functions, so they agree on what
counts as non-finite (NaN, +Inf, -Inf; a missing value is *not* a NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# Logged losses checked on top of any monitored quantity: a diverged run can
# still log a finite accuracy (the argmax of NaN logits).
LOSS_KEYS = ("loss", "val_loss")


def as_float(value: Any) -> float | None:
    """A Python float of a scalar (tensor, NumPy or Python), else None."""
    if value is None:
        return None
    try:
        return float(np.asarray(value, dtype="float64"))
    except (TypeError, ValueError):
        return None


def is_nonfinite(value: Any) -> bool:
    """Whether a scalar is NaN or +/-Inf. `None` (missing) is not."""
    x = as_float(value)
    return x is not None and not math.isfinite(x)


def nonfinite_logs(
    logs: Mapping[str, Any] | None, keys: Iterable[str] | None = None
) -> dict[str, float]:
    """The entries of a Keras `logs` dict that are NaN/Inf.

    Args:
        logs: the `logs` of a callback hook. Keys that are absent (e.g. no
            `val_loss` in an epoch without validation) are never reported.
        keys: the keys to check. Defaults to every numeric entry.
    """
    logs = logs or {}
    names = list(logs) if keys is None else [k for k in keys if k in logs]
    out = {}
    for name in names:
        x = as_float(logs[name])
        if x is not None and not math.isfinite(x):
            out[name] = x
    return out


def first_nonfinite(values: Iterable[Any]) -> int | None:
    """Index of the first NaN/Inf in a sequence (None entries skipped)."""
    for i, value in enumerate(values):
        if is_nonfinite(value):
            return i
    return None


def all_finite(arrays: Iterable[Any]) -> bool:
    """Whether every floating-point array holds only finite values."""
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            return False
    return True


def count_nonfinite(array: Any) -> int:
    """The number of NaN/Inf entries of a floating-point array (0 else)."""
    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        return 0
    return int(a.size - np.count_nonzero(np.isfinite(a)))
