"""Rules over probe statistics: gradients, dead and saturated units.

`probes` is the list a `RunRecord` holds: per probe a dict with
`grad_rms`/`weight_rms` (one value per kernel-bearing layer, forward
order), `dead`/`saturated` (fraction per monitored layer) and
`update_ratio` (per layer, ||dw|| / ||w|| of one step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_training_kit.diagnosis.finding import Finding
from keras_training_kit.diagnosis.rules import thresholds as T


def _later(items: Sequence) -> list:
    items = list(items)
    return items[len(items) // 2 :]


def median_update_ratio(probes: Sequence[dict]) -> float | None:
    """Median over the later probes and the layers of ||dw|| / ||w||."""
    values = [
        float(r)
        for p in _later([p for p in probes if p.get("update_ratio")])
        for r in p["update_ratio"].values()
        if r is not None and np.isfinite(r)
    ]
    return float(np.median(values)) if values else None


def check_gradients(
    grad_rms: Sequence[Sequence[float]],
    layer_names: Sequence[str],
    steps: Sequence[int] | None = None,
    weight_rms: Sequence[Sequence[float]] | None = None,
    *,
    fit_ratio: float | None = None,
) -> list[Finding]:
    """`vanishing_gradients` / `exploding_gradients` from per-layer norms.

    `grad_rms[p][i]` is the RMS gradient of layer `i`'s kernel at probe
    `p`, `weight_rms[p][i]` the RMS of that kernel. On the median over the
    later half of the probes:

    - vanishing: first/last layer gradient ratio below `VANISH_RATIO`
      (AUTOTRAINER's 1e-3), when it costs something: the final loss is at
      least `VANISH_COST` of the constant predictor's (`fit_ratio`; near a
      fit every gradient shrinks, and an attention block's first kernel
      gets small gradients in a net that fits perfectly);
    - exploding: that ratio above `EXPLODE_RATIO`; or a layer whose gradient
      RMS exceeds `EXPLODE_RELATIVE` x its weight RMS; or the global
      gradient norm growing `EXPLODE_GROWTH`-fold (`kind="growth"`).
    """
    g = np.asarray(grad_rms, dtype="float64")
    if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] == 0:
        return []
    if not np.isfinite(g).all():
        return []  # non-finite gradients are `diverged`'s business
    names = list(layer_names)
    if len(names) != g.shape[1]:
        names = [f"layer_{i}" for i in range(g.shape[1])]
    later = g[g.shape[0] // 2 :]
    median = np.median(later, axis=0)
    per_layer = {n: float(x) for n, x in zip(names, median)}
    if g.shape[1] >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = later[:, 0] / later[:, -1]
        ratios = ratios[np.isfinite(ratios)]
        if ratios.size:
            ratio = float(np.median(ratios))
            evidence = {
                "first_layer": names[0],
                "last_layer": names[-1],
                "ratio": ratio,
                "first_rms": float(median[0]),
                "last_rms": float(median[-1]),
                "per_layer_rms": per_layer,
            }
            if fit_ratio is not None:
                evidence["fit_ratio"] = float(fit_ratio)
            costly = fit_ratio is None or fit_ratio >= T.VANISH_COST
            if ratio < T.VANISH_RATIO and costly:
                return [
                    Finding("vanishing_gradients", "warning", None, evidence)
                ]
            if ratio > T.EXPLODE_RATIO:
                evidence["kind"] = "ratio"
                evidence["reason"] = (
                    f"gradient RMS of the first layer `{names[0]}` is "
                    f"{ratio:.3g} x that of the last layer `{names[-1]}`"
                )
                return [
                    Finding("exploding_gradients", "warning", None, evidence)
                ]
    if weight_rms is not None:
        w = np.asarray(weight_rms, dtype="float64")
        if w.shape == g.shape:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.median(later / w[w.shape[0] // 2 :], axis=0)
            rel = np.where(np.isfinite(rel), rel, 0.0)
            worst = int(np.argmax(rel))
            if rel[worst] > T.EXPLODE_RELATIVE:
                evidence = {
                    "kind": "relative",
                    "layer": names[worst],
                    "relative": float(rel[worst]),
                    "reason": (
                        f"gradient RMS of `{names[worst]}` is "
                        f"{rel[worst]:.3g} x its weight RMS"
                    ),
                    "per_layer_rms": per_layer,
                }
                return [
                    Finding("exploding_gradients", "warning", None, evidence)
                ]
    norm = np.sqrt((g**2).sum(axis=1))
    growth = float(norm.max() / max(norm[0], 1e-30))
    if g.shape[0] >= 3 and growth > T.EXPLODE_GROWTH:
        evidence = {
            "kind": "growth",
            "reason": (
                f"global gradient norm grows from {norm[0]:.3g} "
                f"to {norm.max():.3g}"
            ),
            "global_norm_first": float(norm[0]),
            "global_norm_max": float(norm.max()),
            "growth": growth,
        }
        return [Finding("exploding_gradients", "warning", None, evidence)]
    return []


def _persistent(fractions: Sequence[dict], threshold: float) -> list:
    """Layers whose fraction stays >= threshold over the later probes."""
    later = _later([f for f in fractions if f])
    if not later:
        return []
    hits = []
    for name in later[-1]:
        values = [f[name] for f in later if name in f]
        if values and min(values) >= threshold:
            hits.append((name, float(np.median(values))))
    return hits


def check_dead_units(
    dead_fractions: Sequence[dict[str, float]],
    units: dict[str, int] | None = None,
    *,
    fit_ratio: float | None = None,
    initial_probe: bool = False,
) -> list[Finding]:
    """`dead_units`: ReLU units that never fire, at a cost.

    `dead_fractions[p][layer]` is the fraction of a ReLU layer's units whose
    output is zero for every probe example at probe `p`. A layer with at
    least `DEAD_FRACTION` (AUTOTRAINER's 70%) dead units in every later
    probe is reported when the run is also far from a fit: its final loss
    is at least `DEAD_COST` of the constant predictor's (`fit_ratio`). A
    net that fits well with many silent units is not a problem. With
    `initial_probe` (the first probe ran before training), units that were
    alive at initialization (below `DEAD_AT_INIT` dead) and died during
    training are the classic sign of a too-high learning rate: reported as
    `lr_too_high` (`kind="dying_relu"`).
    """
    findings = []
    first = dict(dead_fractions[0]) if dead_fractions else {}
    for name, fraction in _persistent(dead_fractions, T.DEAD_FRACTION):
        at_init = first.get(name)
        if initial_probe and at_init is not None and at_init < T.DEAD_AT_INIT:
            # Alive before training, dead after: killed by the steps.
            evidence = {
                "reason": (
                    f"{fraction:.0%} of the ReLU units of `{name}` died "
                    f"during training ({at_init:.0%} at initialization)"
                ),
                "kind": "dying_relu", "layer": name, "fraction": fraction,
                "fraction_at_init": float(at_init),
            }
            findings.append(Finding("lr_too_high", "warning", None, evidence))
            continue
        if fit_ratio is not None and fit_ratio < T.DEAD_COST:
            continue
        n = int((units or {}).get(name, 0))
        evidence = {
            "layer": name,
            "fraction": fraction,
            "units": n,
            "dead": round(fraction * n),
        }
        if fit_ratio is not None:
            evidence["fit_ratio"] = float(fit_ratio)
        findings.append(Finding("dead_units", "warning", None, evidence))
    return findings


def check_saturated_units(
    saturated_fractions: Sequence[dict[str, float]],
    activations: dict[str, str] | None = None,
) -> list[Finding]:
    """`saturated_units`: sigmoid/tanh outputs pinned at their limits.

    The fraction of a sigmoid/tanh layer's outputs within 1% of its limits
    (sigmoid < 0.01 or > 0.99, |tanh| > 0.99); more than
    `SATURATED_FRACTION` (DeepDiagnosis' 50%) in every later probe.
    """
    findings = []
    for name, fraction in _persistent(
        saturated_fractions, T.SATURATED_FRACTION
    ):
        evidence = {
            "layer": name,
            "fraction": fraction,
            "activation": (activations or {}).get(name, "sigmoid/tanh"),
        }
        findings.append(Finding("saturated_units", "warning", None, evidence))
    return findings
