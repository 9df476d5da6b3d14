"""Small statistics the rules share: finite prefixes, a trend test, noise."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def arr(values: Sequence[float] | None) -> np.ndarray:
    """A float64 1-D array (empty for None)."""
    if values is None:
        return np.zeros(0)
    return np.asarray(
        [math.nan if v is None else v for v in values], dtype="float64"
    ).reshape(-1)


def finite_prefix(values: Sequence[float]) -> np.ndarray:
    """The values before the first NaN/Inf."""
    values = arr(values)
    bad = np.flatnonzero(~np.isfinite(values))
    return values[: bad[0]] if bad.size else values


def mann_kendall_z(values: Sequence[float]) -> float:
    """The Mann-Kendall trend statistic of a series, as a z-score.

    `S = sum_{i<j} sign(x_j - x_i)`, `Var(S) = n(n-1)(2n+5)/18`, and
    `z = (S - sign(S)) / sqrt(Var(S))` (continuity-corrected). Negative z is
    a decline; under "no trend" z is standard normal, whatever the
    distribution of the noise (Mann 1945, Kendall 1975).

    Example:

    >>> round(mann_kendall_z([5, 4, 3, 2, 1, 0, -1, -2, -3, -4]), 2)
    -3.94
    """
    x = arr(values)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 3:
        return 0.0
    diff = x[None, :] - x[:, None]
    s = float(np.sign(diff[np.triu_indices(n, 1)]).sum())
    var = n * (n - 1) * (2 * n + 5) / 18.0
    if s == 0:
        return 0.0
    return (s - math.copysign(1.0, s)) / math.sqrt(var)


def chunk_means(values: np.ndarray, chunks: int) -> np.ndarray:
    """Means of `chunks` contiguous, equal parts (fewer when short)."""
    values = values[np.isfinite(values)]
    k = min(chunks, values.size)
    if k == 0:
        return np.zeros(0)
    return np.array([part.mean() for part in np.array_split(values, k)])


def noise_std(values: np.ndarray) -> float:
    """Noise of a curve around its local trend.

    Second differences remove a locally linear trend; for white noise of
    std s, median |d2| is about 1.65 s (|d2| ~ N(0, 6 s^2), median of a
    half-normal 0.674 sqrt(6) s).
    """
    values = values[np.isfinite(values)]
    if values.size < 4:
        return 0.0
    return float(np.median(np.abs(np.diff(values, 2)))) / 1.65


def sign_test_p(worse: int, better: int) -> float:
    """One-sided exact sign test: P(X >= worse), X ~ Binomial(n, 1/2).

    `worse` and `better` count the paired rows where one method does
    strictly worse / better than the other (ties dropped); for 0/1 errors
    this is McNemar's exact test (McNemar 1947).

    Example:

    >>> round(sign_test_p(9, 1), 4)
    0.0107
    """
    n = int(worse) + int(better)
    if n == 0 or worse <= 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(int(worse), n + 1))
    return float(tail / (1 << n))  # exact big-int division, any n
