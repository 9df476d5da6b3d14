"""`measurements(record)`: the numbers the rules compare with thresholds.

Every rule decides on a few statistics of the record; this function
computes them for any run, problem or not, so that the thresholds can be
calibrated (`benchmarks/diagnosis_accuracy.py --json` stores them per run)
and their margins reported (`docs/diagnosis.md`). It uses the rules' own
helpers, so a measurement is exactly what the rule saw.
"""

from __future__ import annotations

import math

import numpy as np

from keras_training_kit.diagnosis.record import RunRecord
from keras_training_kit.diagnosis.rules import _stats, bias, curves, probes


def _later_max(fractions: list) -> float | None:
    later = [f for f in fractions if f][len([f for f in fractions if f])
                                        // 2:]
    if not later:
        return None
    names = set().union(*later)
    return max(min(f.get(n, 0.0) for f in later) for n in names)


def measurements(record: RunRecord, reference: float | None = None) -> dict:
    """Statistics of a run, keyed by the threshold they are compared with."""
    out: dict = {}
    _, loss = record.curve("loss")
    loss = _stats.finite_prefix(loss)
    batches = record.batch_losses or None
    if reference and loss.size:
        out["fit_ratio"] = curves.final_level(loss, batches) / reference
        z, points = curves.trend(loss, batches)
        out["trend_z"], out["trend_points"] = z, points
        out["steadiness"] = curves.steadiness(loss, batches)
    if loss.size >= 2:
        running = np.minimum.accumulate(loss)
        out["lr_rise"] = float(np.max(loss[1:] / np.maximum(running[:-1],
                                                            1e-12)))
        out["final_over_best"] = float(loss[-1] / max(loss.min(), 1e-12))
    _, val = record.curve("val_loss")
    val = val[np.isfinite(val)]
    if val.size >= 4:
        best = int(np.argmin(val))
        out["overfit_rise"] = float((val[-1] - val[best]) / val[best])
        if reference:
            out["overfit_rise_of_reference"] = float(
                (val[-1] - val[best]) / reference
            )
    update = probes.median_update_ratio(record.probes)
    if update is not None:
        out["update_ratio"] = update
    if record.initial_loss and record.chance_loss:
        out["initial_over_chance"] = record.initial_loss / record.chance_loss
    if record.inputs:
        mean = np.asarray(record.inputs["mean"], "float64")
        std = np.asarray(record.inputs["std"], "float64")
        rms = np.sqrt(mean**2 + std**2)
        if rms.size and rms.max() > 0:
            out["input_max_rms"] = float(rms.max())
            out["input_spread"] = float(rms.max() / max(
                np.median(rms[rms > 0]), 1e-12))
    if record.targets:
        out["target_rms"] = record.targets.get("rms")
    dead = _later_max([p.get("dead", {}) for p in record.probes])
    if dead is not None:
        out["dead_fraction"] = dead
    sat = _later_max([p.get("saturated", {}) for p in record.probes])
    if sat is not None:
        out["saturated_fraction"] = sat
    g = [p["grad_rms"] for p in record.probes if p.get("grad_rms")]
    g = np.asarray(g, "float64") if g else np.zeros((0, 0))
    if g.ndim == 2 and g.shape[0] and g.shape[1] >= 2 and np.isfinite(g).all():
        later = g[g.shape[0] // 2:]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.median(later[:, 0] / later[:, -1])
        if math.isfinite(ratio):
            out["grad_ratio"] = float(ratio)
    nb = record.neighbours
    if nb and bias.gap(nb) is not None:
        out["bias_gap"] = bias.gap(nb)
        out["bias_p"] = _stats.sign_test_p(nb["model_worse"],
                                           nb["neighbours_worse"])
    cvs = []
    for b in list(batches or [])[1:]:
        values = _stats.arr(b)
        values = values[np.isfinite(values)]
        if values.size >= 8:
            cvs.append(curves.batch_noise(values))
    if cvs:
        out["noise_cv"] = float(np.median(cvs))
    return out
