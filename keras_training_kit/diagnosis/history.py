"""Reading finished runs: a `History`, a dict of lists, a CSVLogger file.

Pure Python and NumPy: `ktk diagnose log.csv` reads a log without importing
TensorFlow.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

import numpy as np

# What keras.callbacks.CSVLogger writes for a quantity not logged in an
# epoch (e.g. `val_loss` with `validation_freq`): missing, not NaN.
_MISSING = ("", "NA", "N/A", "None")


def _as_float_list(key: str, values: Any) -> list:
    try:
        return [
            None if v is None else float(v)
            for v in (values if isinstance(values, list) else
                      np.asarray(values, dtype="float64").ravel().tolist())
        ]
    except (TypeError, ValueError):
        raise ValueError(
            f"History entry `{key}` must be a list of numbers. "
            f"Received: {key}={values!r:.80}"
        ) from None


def load_history(history: Any) -> dict[str, list]:
    """Per-epoch lists from a History, a dict or a CSVLogger file path.

    Raises:
        ValueError: for an empty, unreadable or malformed source, or one
            without a `loss` column, with a message that says which.
    """
    if isinstance(history, (str, os.PathLike)):
        return read_csv_log(history)
    data = getattr(history, "history", history)
    if not isinstance(data, dict):
        raise ValueError(  # noqa: TRY004 (the contract: bad input, ValueError)
            "Argument `history` must be a keras.callbacks.History, a dict of "
            "per-epoch lists or a CSVLogger file path. "
            f"Received: history={history!r:.80}"
        )
    if "loss" not in data:
        raise ValueError(
            "Argument `history` has no `loss` entry. Received keys: "
            f"{sorted(data)}"
        )
    out = {
        str(k): _as_float_list(str(k), v)
        for k, v in data.items()
        if k != "epoch"
    }
    if not out["loss"]:
        raise ValueError("Argument `history` has no epochs (empty `loss`).")
    return out


def read_csv_log(path: str | os.PathLike) -> dict[str, list]:
    """Reads a `keras.callbacks.CSVLogger` file into per-epoch lists.

    A truncated last row (as left by a run killed while writing) is
    skipped; NaN and Inf are kept (a `diverged` finding); `NA` or empty
    cells (a quantity not logged that epoch) become `None`.
    """
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"Cannot read the CSV log {path!r}: {e}") from None
    rows = [r for r in csv.reader(text.splitlines()) if r]
    if not rows:
        raise ValueError(f"The CSV log {path!r} is empty.")
    header = [h.strip() for h in rows[0]]
    if "loss" not in header:
        raise ValueError(
            f"The CSV log {path!r} has no `loss` column (columns: "
            f"{header}); is it a keras.callbacks.CSVLogger file?"
        )
    body = rows[1:]
    if body and len(body[-1]) < len(header):
        body = body[:-1]  # truncated last line
    if not body:
        raise ValueError(f"The CSV log {path!r} has no epochs.")
    columns: dict[str, list] = {h: [] for h in header}
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(
                f"The CSV log {path!r} is malformed at line {line}: "
                f"{len(row)} fields for {len(header)} columns."
            )
        for name, cell in zip(header, row):
            cell = cell.strip()
            if cell in _MISSING:
                columns[name].append(None)
                continue
            try:
                columns[name].append(float(cell))
            except ValueError:
                raise ValueError(
                    f"The CSV log {path!r} has a non-numeric value "
                    f"{cell!r} in column `{name}` at line {line}."
                ) from None
    columns.pop("epoch", None)
    if all(v is None for v in columns["loss"]):
        raise ValueError(f"The CSV log {path!r} has no `loss` values.")
    return columns


