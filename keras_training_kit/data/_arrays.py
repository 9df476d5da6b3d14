"""Length checks and row indexing for the input types the kit accepts.

NumPy arrays, lists (one element per sample), pandas DataFrames/Series (when
pandas is installed; never imported here) and dicts of those for multi-input
models all reduce to two operations: `num_samples` and `take`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _is_pandas(x: Any) -> bool:
    # Duck typing keeps pandas an optional, never-imported dependency.
    return hasattr(x, "iloc") and hasattr(x, "index")


def num_samples(x: Any, name: str = "x") -> int:
    """Number of samples (rows) in `x`; dicts must agree across keys."""
    if isinstance(x, dict):
        if not x:
            raise ValueError(
                f"Argument `{name}` must not be an empty dict. Received: "
                f"{name}={x!r}"
            )
        lengths = {k: num_samples(v, f"{name}[{k!r}]") for k, v in x.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"All arrays in `{name}` must have the same number of "
                f"samples. Received lengths: {lengths}"
            )
        return next(iter(lengths.values()))
    if x is None:
        raise ValueError(f"Argument `{name}` must not be None.")
    if _is_pandas(x) or isinstance(x, (list, tuple)):
        return len(x)
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) == 0:
        raise ValueError(
            f"Argument `{name}` must be an array, list, pandas object or "
            f"dict of arrays with one row per sample. Received: "
            f"{name} of type {type(x).__name__}"
        )
    return int(shape[0])


def take(x: Any, index: np.ndarray) -> Any:
    """Rows `index` of `x`, keeping its type (dict, list, pandas, array)."""
    if isinstance(x, dict):
        return {k: take(v, index) for k, v in x.items()}
    if _is_pandas(x):
        return x.iloc[index]
    if isinstance(x, (list, tuple)):
        return type(x)(x[i] for i in index)
    return x[index]


def check_xy(x: Any, y: Any) -> int:
    """`x` and `y` are non-empty and of equal length; returns the length."""
    n = num_samples(x, "x")
    if y is not None:
        ny = num_samples(y, "y")
        if n != ny:
            raise ValueError(
                "Arguments `x` and `y` must have the same number of "
                f"samples. Received: len(x)={n}, len(y)={ny}"
            )
    if n == 0:
        raise ValueError("Argument `x` must not be empty. Received: 0 samples")
    return n


def labels_for_stratify(y: Any) -> np.ndarray:
    """Class labels from `y`: integer labels, or argmax of one-hot rows."""
    if isinstance(y, dict):
        if len(y) != 1:
            raise ValueError(
                "`stratify=True` needs a single target; `y` is a dict with "
                f"keys {list(y)}"
            )
        y = next(iter(y.values()))
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1)
    return labels.reshape(len(labels), -1)[:, 0]


def kfold(
    n: int, folds: int, labels: np.ndarray | None, seed: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, validation) index pairs; every sample validates once."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if folds > n:
        raise ValueError(
            f"Argument `folds` must be <= the number of samples ({n}). "
            f"Received: folds={folds}"
        )
    if labels is None:
        splitter = KFold(folds, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(n))]
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(n), labels)]
