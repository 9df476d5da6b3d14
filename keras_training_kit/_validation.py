"""One place for argument checks, with Keras-style messages.

Every check raises `ValueError` that names the argument, the allowed range
and the value received: "Argument `momentum` must be in [0, 1). Received:
momentum=1.0". Call them in `__init__`, so errors surface before training.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable


def _fail(name: str, allowed: str, value: Any) -> None:
    raise ValueError(
        f"Argument `{name}` must be {allowed}. Received: {name}={value!r}"
    )


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` is a finite real number in the interval [low, high].

    `low_open` / `high_open` exclude the bound. Returns the value as float.
    """
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    allowed = (
        f"in {lo}{'-inf' if low is None else low}, "
        f"{'inf' if high is None else high}{hi}"
    )
    if low is not None and high is None:
        allowed = f"{'>' if low_open else '>='} {low}"
    if not _is_real(value) or math.isnan(value):
        _fail(name, f"a number {allowed}", value)
    if low is not None and (value < low or (low_open and value == low)):
        _fail(name, allowed, value)
    if high is not None and (value > high or (high_open and value == high)):
        _fail(name, allowed, value)
    if math.isinf(value):
        _fail(name, f"finite and {allowed}", value)
    return float(value)


def check_unit_interval(name: str, value: Any) -> float:
    """`value` in [0, 1): momentum, rho, betas, dropout rate."""
    return check_range(name, value, 0.0, 1.0, high_open=True)


def check_non_negative(name: str, value: Any) -> float:
    """`value` >= 0: epsilon, regularization factors."""
    return check_range(name, value, 0.0)


def check_positive(name: str, value: Any) -> float:
    """`value` > 0."""
    return check_range(name, value, 0.0, low_open=True)


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """`value` is an integer >= `minimum` (counts: steps, folds, pieces)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        _fail(name, f"an integer >= {minimum}", value)
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """`value` is one of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        _fail(name, f"one of {choices}", value)
    return value


def check_learning_rate(value: Any, name: str = "learning_rate") -> Any:
    """A learning rate: a number >= 0, a schedule, or a callable."""
    import keras

    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value
    if callable(value) and not _is_real(value):
        return value
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # a tensor/var
        return value
    check_range(name, value, 0.0)
    return value
