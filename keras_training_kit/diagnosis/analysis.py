"""`diagnose`: the training diagnosis, offline or from a callback's records.

`diagnose(history)` reads a `keras.callbacks.History`, a dict of per-epoch
lists or a `keras.callbacks.CSVLogger` file and runs the curve rules.
`analyze(...)` also takes the per-batch losses and probe statistics that
`ktk.callbacks.TrainingDiagnosis` gathers during `fit`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_training_kit.diagnosis import rules
from keras_training_kit.diagnosis.finding import Finding

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


class Diagnosis(list):
    """A list of `Finding`, with `notes` on what could not be checked."""

    def __init__(self, findings=(), notes=()):
        super().__init__(findings)
        self.notes = list(notes)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self if f.severity != "info"]

    def report(self) -> str:
        """Readable text: each finding with its numbers and remedy."""
        errors = sum(f.severity == "error" for f in self)
        warnings = sum(f.severity == "warning" for f in self)
        if errors or warnings:
            head = (
                f"Training diagnosis: {errors} error(s), "
                f"{warnings} warning(s)."
            )
        else:
            head = "Training diagnosis: healthy."
        lines = [head] + [str(f) for f in self]
        if self.notes:
            lines.append("Not checked: " + "; ".join(self.notes) + ".")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "findings": [f.to_dict() for f in self],
            "notes": list(self.notes),
        }


def _as_float_list(key: str, values: Any) -> list[float]:
    try:
        return [float(v) for v in np.asarray(values, dtype="float64").ravel()]
    except (TypeError, ValueError):
        raise ValueError(
            f"History entry `{key}` must be a list of numbers. "
            f"Received: {key}={values!r:.80}"
        ) from None


def load_history(history: Any) -> dict[str, list[float]]:
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
    n = len(out["loss"])
    return {k: v[:n] for k, v in out.items()}


def read_csv_log(path: str | os.PathLike) -> dict[str, list[float]]:
    """Reads a `keras.callbacks.CSVLogger` file into per-epoch lists.

    A truncated last row (fewer fields than the header, as left by a run
    that was killed while writing) is skipped; NaN and Inf are kept, so
    they become a `diverged` finding.
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
    columns: dict[str, list[float]] = {h: [] for h in header}
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(
                f"The CSV log {path!r} is malformed at line {line}: "
                f"{len(row)} fields for {len(header)} columns."
            )
        for name, cell in zip(header, row):
            cell = cell.strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                raise ValueError(
                    f"The CSV log {path!r} has a non-numeric value "
                    f"{cell!r} in column `{name}` at line {line}."
                ) from None
            columns[name].append(value)
    columns.pop("epoch", None)
    return columns


def analyze(
    history: dict[str, Sequence[float]],
    baseline_loss: float | None = None,
    *,
    batch_losses: Sequence[Sequence[float]] | None = None,
    initial_loss: float | None = None,
    chance_loss: float | None = None,
    gradients: dict | None = None,
    activations: dict | None = None,
    inputs: dict | None = None,
    notes: Sequence[str] = (),
) -> Diagnosis:
    """Runs every rule on what is available and returns a `Diagnosis`.

    Args:
        history: per-epoch lists (`loss`, optionally `val_loss`).
        baseline_loss: the constant predictor's loss, if known.
        batch_losses: per epoch, the per-batch training losses.
        initial_loss: the loss before the first update.
        chance_loss: `-log(1/C)` for C classes, if known.
        gradients: `{"rms": [[...] per probe], "layers": [...], "steps":
            [...]}`.
        activations: `{"dead": [{layer: fraction}], "units": {...},
            "saturated": [{layer: fraction}], "kinds": {...}}`.
        inputs: `{"mean": [...], "std": [...]}` of the first batches.
        notes: what could not be measured, for the report.
    """
    loss = list(history["loss"])
    val = history.get("val_loss")
    notes = list(notes)
    findings: list[Finding] = []
    findings += rules.check_initial_loss(initial_loss, chance_loss)
    if inputs is not None:
        findings += rules.check_unscaled_inputs(inputs["mean"], inputs["std"])
    diverged = rules.check_diverged(loss, val, batch_losses)
    findings += diverged
    finite = rules.finite_prefix(loss)
    if finite.size:
        # After a divergence only the finite prefix is meaningful.
        n = finite.size
        batches = list(batch_losses or [])[:n] or None
        val_f = None if val is None else list(val)[:n]
        if val_f is not None:
            findings += rules.check_overfitting(finite, val_f)
        high = rules.check_lr_too_high(finite, batches, initial_loss)
        findings += high
        if not high and not diverged:
            findings += rules.check_underfitting(
                finite, val_f, baseline_loss, initial_loss
            )
            findings += rules.check_lr_too_low(
                finite, baseline_loss, initial_loss
            )
        if batches:
            findings += rules.check_noisy_loss(batches)
    if val is None:
        notes.append("overfitting (no validation data: pass validation_data)")
    if batch_losses is None:
        notes.append("noisy_loss (no per-batch losses)")
    if gradients and gradients.get("rms"):
        findings += rules.check_gradients(
            gradients["rms"],
            gradients["layers"],
            gradients.get("steps"),
            gradients.get("weight_rms"),
        )
    else:
        notes.append("vanishing/exploding gradients (no gradient probes)")
    probed = activations and (
        activations.get("dead") or activations.get("saturated")
    )
    if probed:
        findings += rules.check_dead_units(
            activations.get("dead", []), activations.get("units")
        )
        findings += rules.check_saturated_units(
            activations.get("saturated", []), activations.get("kinds")
        )
    else:
        notes.append("dead/saturated units (no activation probes)")
    if inputs is None:
        notes.append("unscaled_inputs (no input batch)")
    if baseline_loss is None and initial_loss is None:
        notes.append(
            "underfitting/lr_too_low judged from the curve shape alone "
            "(no baseline_loss)"
        )
    findings = _merge_consequences(findings)
    findings.sort(
        key=lambda f: (
            _SEVERITY_ORDER[f.severity],
            -1 if f.epoch is None else f.epoch,
        )
    )
    if not findings:
        last = finite[-1] if finite.size else float("nan")
        evidence = {"epochs": len(loss), "loss": float(last)}
        if val is not None and len(val):
            evidence["val_loss"] = float(val[-1])
        evidence["not_checked"] = notes
        findings.append(Finding("healthy", "info", None, evidence))
    return Diagnosis(findings, notes)


# A symptom explained by a root cause is folded into the cause's evidence:
# one remedy to apply, not a list of its consequences.
EXPLAINED_BY = {
    "underfitting": (
        "dead_units",
        "saturated_units",
        "vanishing_gradients",
    ),
    "vanishing_gradients": ("dead_units", "saturated_units"),
    "high_initial_loss": (
        "unscaled_inputs",
        "exploding_gradients",
        "saturated_units",
    ),
    # Unscaled features make the loss surface elongated: gradient descent
    # oscillates across it at any usable learning rate (course: feature
    # scaling), so scaling comes first.
    "lr_too_high": ("unscaled_inputs",),
    "noisy_loss": ("lr_too_high",),
    "exploding_gradients": ("lr_too_high",),
}


def _cause_of(f: Finding, by_code: dict[str, Finding]) -> Finding | None:
    if f.code == "exploding_gradients" and f.evidence.get("kind") not in (
        "growth",
        "relative",
    ):
        return None  # an architecture problem, not the learning rate's
    for code in EXPLAINED_BY.get(f.code, ()):
        if code in by_code:
            return by_code[code]
    return None


def _merge_consequences(findings: list[Finding]) -> list[Finding]:
    by_code = {f.code: f for f in findings}
    kept = []
    for f in findings:
        cause, seen = _cause_of(f, by_code), {f.code}
        root = None
        while cause is not None and cause.code not in seen:
            root, seen = cause, seen | {cause.code}
            cause = _cause_of(cause, by_code)
        if root is None:
            kept.append(f)
        else:
            root.evidence.setdefault("also_seen", []).append(
                f"{f.code}: {f.summary}"
            )
    return kept


def diagnose(history: Any, baseline_loss: float | None = None) -> Diagnosis:
    """Diagnoses a finished training run from its per-epoch losses.

    Without per-batch, gradient or activation data only the curve rules
    run: `diverged`, `overfitting`, `lr_too_high`, `underfitting`,
    `lr_too_low`. Without `baseline_loss` (the constant predictor's loss:
    class-prior cross-entropy, or the target variance for MSE) underfitting
    and a too-small learning rate are judged from the curve shape alone:
    a loss that barely drops and then sits flat, with validation ≈
    training, is underfitting.

    Args:
        history: a `keras.callbacks.History`, a dict of per-epoch lists
            with at least `loss`, or the path of a `keras.callbacks.CSVLogger`
            file.
        baseline_loss: the constant predictor's loss. Defaults to `None`.

    Returns:
        A `Diagnosis`: a list of `Finding` (a single `healthy` one when
        nothing is wrong) with `.notes` on what could not be checked and
        `.report()`.

    Raises:
        ValueError: for an empty or malformed history or CSV file.

    Example:

    >>> history = {"loss": [1.0, 0.5, 0.3, 0.2, 0.1, 0.05],
    ...            "val_loss": [1.0, 0.6, 0.5, 0.6, 0.7, 0.8]}
    >>> [f.code for f in diagnose(history)]
    ['overfitting']
    """
    if baseline_loss is not None:
        from keras_training_kit import _validation as v

        baseline_loss = v.check_positive("baseline_loss", baseline_loss)
    data = load_history(history)
    return analyze(data, baseline_loss)
