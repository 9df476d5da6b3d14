"""JSON-friendly values: the one conversion used by findings and records."""

from __future__ import annotations

import math
from typing import Any

_NONFINITE_TEXT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def plain(value: Any) -> Any:
    """NumPy scalars and arrays to Python, NaN/Inf to text, recursively."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        if hasattr(value, "tolist"):
            value = value.tolist()
        return [plain(v) for v in value]
    return value


def unplain(value: Any) -> Any:
    """The inverse of `plain` for NaN/Inf written as text."""
    if isinstance(value, dict):
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unplain(v) for v in value]
    if isinstance(value, str) and value in _NONFINITE_TEXT:
        return _NONFINITE_TEXT[value]
    return value
