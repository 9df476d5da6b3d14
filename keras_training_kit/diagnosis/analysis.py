"""`analyze(record)`: the pure diagnosis of a `RunRecord`.

It runs every rule on what the record holds, folds the consequences into
their root cause (one remedy to apply, not a list of symptoms), orders the
problems by cause, and returns an immutable `Diagnosis`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from keras_training_kit.diagnosis import rules
from keras_training_kit.diagnosis.finding import Finding
from keras_training_kit.diagnosis.record import RunRecord

# Root causes first: a problem earlier in this list explains later ones
# more often than the reverse (the data and the model as written, then the
# numerics, then the optimization, then generalization).
PRIORITY = (
    "loss_output_mismatch",
    "unscaled_targets",
    "unscaled_inputs",
    "diverged",
    "high_initial_loss",
    "exploding_gradients",
    "vanishing_gradients",
    "saturated_units",
    "dead_units",
    "lr_too_high",
    "lr_too_low",
    "noisy_loss",
    "underfitting",
    "overfitting",
    "healthy",
)

# A symptom explained by a cause that is also present is folded into the
# cause's evidence (`also_seen`).
EXPLAINED_BY = {
    "underfitting": (
        "lr_too_high",
        "loss_output_mismatch",
        "unscaled_targets",
        "unscaled_inputs",
        "dead_units",
        "saturated_units",
        "vanishing_gradients",
    ),
    "lr_too_low": (
        "lr_too_high",
        "loss_output_mismatch",
        "unscaled_targets",
        "unscaled_inputs",
        "dead_units",
        "saturated_units",
        "vanishing_gradients",
    ),
    "vanishing_gradients": ("saturated_units", "dead_units"),
    "saturated_units": ("unscaled_inputs",),
    "dead_units": ("lr_too_high",),
    "high_initial_loss": (
        "loss_output_mismatch",
        "unscaled_inputs",
        "exploding_gradients",
        "saturated_units",
    ),
    "lr_too_high": ("unscaled_inputs", "unscaled_targets"),
    "noisy_loss": ("lr_too_high", "unscaled_inputs", "unscaled_targets"),
    "exploding_gradients": (
        "lr_too_high",
        "unscaled_inputs",
        "unscaled_targets",
    ),
    "overfitting": ("diverged",),
}


class Diagnosis(tuple):
    """An immutable sequence of `Finding`, root cause first, with `notes`
    on what could not be checked."""

    def __new__(cls, findings=(), notes=(), measurements=None):
        self = super().__new__(cls, tuple(findings))
        self._notes = tuple(notes)
        self._measurements = dict(measurements or {})
        return self

    @property
    def notes(self) -> tuple:
        return self._notes

    @property
    def measurements(self) -> dict:
        """The statistics the rules compared with their thresholds
        (`ktk.diagnosis.measure.measurements`), for calibration."""
        return dict(self._measurements)

    @property
    def problems(self) -> list[Finding]:
        """The warnings and errors, root cause first."""
        return [f for f in self if f.severity != "info"]

    @property
    def root_cause(self) -> Finding | None:
        problems = self.problems
        return problems[0] if problems else None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def codes(self) -> list[str]:
        return [f.code for f in self]

    def report(self) -> str:
        """Readable text: each finding with its numbers and remedy."""
        from keras_training_kit.diagnosis.render import text

        return text(self)

    def to_dict(self) -> dict:
        return {
            "findings": [f.to_dict() for f in self],
            "notes": list(self.notes),
            "measurements": self.measurements,
        }


def _reference(record: RunRecord, loss: np.ndarray) -> tuple[float, str]:
    if record.baseline_loss is not None and record.baseline_loss > 0:
        return float(record.baseline_loss), "constant predictor"
    init = record.initial_loss
    if init is not None and math.isfinite(init) and init > 0:
        return float(init), "initial loss"
    return (float(loss[0]) if loss.size else math.nan), "first epoch"


def _probe_event(record: RunRecord, key: str) -> dict | None:
    """The first probe whose `key` (a {layer: count}) shows NaN/Inf."""
    for p in record.probes:
        bad = [n for n, c in (p.get(key) or {}).items() if c]
        if key == "act_nonfinite" and p.get("output_nonfinite"):
            bad.append("the output")
        if bad:
            return {"epoch": p.get("epoch", 0), "step": p.get("step"),
                    "layers": bad}
    return None


def _start_loss(record: RunRecord) -> float | None:
    """The logged loss at the initial weights (penalties included)."""
    if record.initial_loss is None or not math.isfinite(record.initial_loss):
        return None
    return record.initial_loss + (record.initial_penalty or 0.0)


def analyze(record: RunRecord) -> Diagnosis:
    """Runs every rule on a `RunRecord` and returns a `Diagnosis`.

    Pure: the record is not changed and the result depends on it alone.
    """
    notes = list(record.notes)
    e_loss, loss = record.curve("loss")
    if loss.size == 0 and not record.batch_losses:
        return Diagnosis((), notes + ["no training observed"])
    e_val, val = record.curve("val_loss")
    batches = record.batch_losses or None
    reference, kind = _reference(record, loss)
    lname = (record.loss or {}).get("name")
    found: list[Finding] = []
    found += rules.check_loss_output(record.loss, record.head, record.targets)
    found += rules.check_unscaled_targets(record.targets, lname)
    found += rules.check_initial_loss(record.initial_loss, record.chance_loss)
    if record.inputs is not None:
        found += rules.check_unscaled_inputs(
            record.inputs["mean"], record.inputs["std"]
        )
    weights_event = record.nonfinite_weights or _probe_event(
        record, "weight_nonfinite"
    )
    diverged = rules.check_diverged(
        loss, val, batches,
        epochs=e_loss, val_epochs=e_val,
        nonfinite_weights=weights_event,
        nonfinite_activations=_probe_event(record, "act_nonfinite"),
        inputs=record.inputs, batches_per_loss=record.batches_per_loss,
    )
    found += diverged
    finite = rules.finite_prefix(loss)
    stop = diverged[0].epoch if diverged else None
    keep = finite.size if stop is None else min(
        finite.size, int(np.searchsorted(e_loss, stop))
    )
    finite, e_fin = finite[:keep], e_loss[:keep]
    fbatches = None if batches is None else batches[: max(keep, 1)]
    probes = [p for p in record.probes if stop is None or p.get("epoch", 0)
              < stop]
    update = rules.median_update_ratio(probes)
    lrs = [x for x in record.learning_rates if x is not None]
    if finite.size:
        vmask = e_val < (stop if stop is not None else np.inf)
        found += rules.check_overfitting(
            finite, val[vmask], epochs=e_fin, val_epochs=e_val[vmask],
            early_stopping=record.early_stopping,
            reference=reference if kind == "constant predictor" else None,
        )
        high = rules.check_lr_too_high(
            finite, fbatches, record.initial_loss, epochs=e_fin,
            reference=reference, batches_per_loss=record.batches_per_loss,
            initial_penalty=record.initial_penalty,
        )
        found += high
        if not high and not diverged and math.isfinite(reference):
            progress = rules.check_progress(
                finite, fbatches, reference=reference, reference_kind=kind,
                val_loss=val[vmask], update_ratio=update,
                learning_rate=lrs[-1] if lrs else None,
                start_loss=_start_loss(record),
            )
            found += progress
            if not progress and not any(
                f.code == "overfitting" for f in found
            ):
                found += rules.check_bias(
                    finite, fbatches, neighbours=record.neighbours,
                    weight_layers=len(record.layers) or None,
                    val_loss=val[vmask])
        if fbatches:
            found += rules.check_noisy_loss(fbatches, reference)
    fit_ratio = None  # how far from a fit the run ends (probe codes' cost)
    if record.baseline_loss and finite.size:
        fit_ratio = rules.final_level(finite, fbatches) / record.baseline_loss
    grads = [p for p in probes if p.get("grad_rms")]
    if grads:
        found += rules.check_gradients(
            [p["grad_rms"] for p in grads], record.layers,
            [p.get("step", 0) for p in grads],
            [p.get("weight_rms") or p["grad_rms"] for p in grads],
            fit_ratio=fit_ratio,
        )
    else:
        notes.append("vanishing/exploding gradients (no gradient probes)")
    acts = [p for p in probes if "dead" in p or "saturated" in p]
    if acts:
        found += rules.check_dead_units(
            [p.get("dead", {}) for p in acts], record.units,
            fit_ratio=fit_ratio, initial_probe=acts[0].get("step") == 0,
        )
        found += rules.check_saturated_units(
            [p.get("saturated", {}) for p in acts], record.monitored
        )
    else:
        notes.append("dead/saturated units (no activation probes)")
    if val.size == 0:
        notes.append(
            "overfitting (no val_loss logged: pass validation_data, or "
            "the run ended before its first validation)"
        )
    if record.inputs is None:
        notes.append("unscaled_inputs (no input sample)")
    if record.baseline_loss is None and record.initial_loss is None:
        notes.append(
            "underfitting/lr_too_low judged from the curve shape alone "
            "(no baseline_loss)"
        )
    found = [_with_rates(f, lrs[-1] if lrs else None, update)
             for f in found]
    found = _merge_consequences(found)
    order = {code: i for i, code in enumerate(PRIORITY)}
    found.sort(key=lambda f: (order[f.code], -1 if f.epoch is None
                              else f.epoch))
    if not found:
        evidence = {
            "epochs": record.num_epochs,
            "loss": float(finite[-1]) if finite.size else math.nan,
        }
        if val.size:
            evidence["val_loss"] = float(val[-1])
        evidence["not_checked"] = notes
        found.append(Finding("healthy", "info", None, evidence))
    from keras_training_kit.diagnosis.measure import measurements

    ref = reference if math.isfinite(reference) else None
    return Diagnosis(found, notes, measurements(record, ref))


_RATE_CODES = ("lr_too_high", "lr_too_low", "noisy_loss", "diverged",
               "exploding_gradients", "dead_units")


def _with_rates(f: Finding, lr: float | None, update: float | None):
    """The optimizer's learning rate and the update/weight ratio as
    evidence of the learning-rate findings."""
    if f.code not in _RATE_CODES:
        return f
    evidence = dict(f.evidence)
    if lr is not None:
        evidence.setdefault("learning_rate", lr)
    if update is not None:
        evidence.setdefault("update_ratio", update)
    return f.replace(evidence=evidence)


def _cause_of(f: Finding, by_code: dict[str, Finding]) -> Finding | None:
    if f.code == "exploding_gradients" and f.evidence.get("kind") not in (
        "growth",
        "relative",
    ):
        return None  # an architecture problem, not the learning rate's
    if f.code == "lr_too_high" and "exploding_gradients" in by_code and (
        not _weights_move(f)
    ):
        # The loss rises while the weights barely move: a symptom of the
        # exploding gradients (a too-large initialization), not the rate.
        return by_code["exploding_gradients"]
    for code in EXPLAINED_BY.get(f.code, ()):
        if code in by_code:
            cause = by_code[code]
            if code == "lr_too_high" and not _weights_move(cause) and not (
                f.code in ("lr_too_low", "underfitting")
                and cause.evidence.get("kind") == "dying_relu"
            ):
                # The weights barely move: not the learning rate, unless
                # the steps killed the ReLU units (dead units pass no
                # gradient, so still weights and a flat loss follow).
                continue
            return cause
    return None


def _weights_move(f: Finding) -> bool:
    """Whether a learning-rate finding's weights move at least at the
    healthy rate (`rules.thresholds.UPDATE_RATIO_HEALTHY` per step), or its
    update ratio is unknown."""
    update = f.evidence.get("update_ratio")
    return update is None or update >= rules.thresholds.UPDATE_RATIO_HEALTHY


def _merge_same_code(findings: list[Finding]) -> list[Finding]:
    """One finding per code (per layer for the unit codes): a second
    finding of the same code adds its reason to the first's evidence."""
    out: list[Finding] = []
    seen: dict[str, int] = {}
    for f in findings:
        key = f.code if f.code not in ("dead_units", "saturated_units") else (
            f"{f.code}/{f.evidence.get('layer')}"
        )
        if key not in seen:
            seen[key] = len(out)
            out.append(f)
            continue
        first = out[seen[key]]
        evidence = dict(first.evidence)
        evidence.setdefault("also_seen", []).append(f"{f.code}: {f.summary}")
        if "reason" in evidence and "reason" in f.evidence:
            evidence["reason"] += "; " + f.evidence["reason"]
        out[seen[key]] = first.replace(evidence=evidence)
    return out


def _merge_consequences(findings: list[Finding]) -> list[Finding]:
    findings = _merge_same_code(findings)
    by_code = {f.code: f for f in findings}
    folded: dict[str, list[str]] = {}
    kept = []
    for f in findings:
        cause, seen, root = _cause_of(f, by_code), {f.code}, None
        while cause is not None and cause.code not in seen:
            root, seen = cause, seen | {cause.code}
            cause = _cause_of(cause, by_code)
        if root is None:
            kept.append(f)
        else:
            folded.setdefault(root.code, []).append(f"{f.code}: {f.summary}")
    out = []
    for f in kept:
        if f.code in folded:
            evidence = dict(f.evidence)
            evidence["also_seen"] = folded[f.code]
            f = f.replace(evidence=evidence)
        out.append(f)
    return out


def diagnose(history: Any, baseline_loss: float | None = None) -> Diagnosis:
    """Diagnoses a finished training run from its per-epoch losses.

    Without per-batch, gradient or activation data only the curve rules
    run: `diverged`, `overfitting`, `lr_too_high`, `underfitting`,
    `lr_too_low`. Without `baseline_loss` (the constant predictor's loss:
    class-prior cross-entropy, or the target variance for MSE) underfitting
    and a too-small learning rate are judged from the curve shape alone.

    Args:
        history: a `keras.callbacks.History`, a dict of per-epoch lists
            with at least `loss`, the path of a `keras.callbacks.CSVLogger`
            file, or a `RunRecord`.
        baseline_loss: the constant predictor's loss. Defaults to `None`.

    Returns:
        A `Diagnosis`: the findings (a single `healthy` one when nothing is
        wrong), `.notes` on what could not be checked, `.report()`.

    Raises:
        ValueError: for an empty or malformed history or CSV file.

    Example:

    >>> history = {"loss": [1.0, 0.5, 0.3, 0.2, 0.1, 0.05],
    ...            "val_loss": [1.0, 0.6, 0.5, 0.6, 0.7, 0.8]}
    >>> [f.code for f in diagnose(history)]
    ['overfitting']
    """
    from keras_training_kit.diagnosis.history import load_history

    if baseline_loss is not None:
        from keras_training_kit import _validation as v

        baseline_loss = v.check_positive("baseline_loss", baseline_loss)
    if isinstance(history, RunRecord):
        record = history
        if baseline_loss is not None:
            record = RunRecord.from_dict(
                {**record.to_dict(), "baseline_loss": baseline_loss}
            )
    else:
        record = RunRecord.from_history(load_history(history), baseline_loss)
    return analyze(record)
