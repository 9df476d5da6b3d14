"""Diagnosis rules: pure functions over loss curves and probe statistics.

Each rule takes plain arrays (per-epoch losses, per-batch losses, per-layer
gradient RMS, activation fractions, input statistics) and returns a list of
`Finding` (empty when nothing is wrong). No rule touches a model, so every
rule is tested on synthetic curves at and around its thresholds.

The published one-shot rules (AUTOTRAINER, DeepDiagnosis: gradient ratio
< 1e-3 for vanishing, >= 70% zero ReLU outputs for dead units, > 50%
saturated sigmoid/tanh outputs) are the starting points; here each one must
also persist over time, and curve rules compare changes with the curve's own
noise, so that healthy runs stay silent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_training_kit.diagnosis.finding import Finding

# Thresholds (module constants so that tests and users can read them).
UNDERFIT_RATIO = 0.5  # final loss >= this fraction of the reference
UNDERFIT_DROP_NO_REF = 0.7  # without reference: last/first loss above this
PLATEAU_TAIL = 0.03  # relative drop over the last third below: flat
OVERFIT_RISE = 0.10  # val_loss rise above its minimum, relative
OVERFIT_MIN_AFTER = 2  # epochs after the best one
LR_HIGH_RISE = 1.5  # loss above this multiple of its earlier minimum
LR_HIGH_START = 1.5  # batch loss above this multiple of the initial loss
LR_HIGH_OSC_FRACTION = 0.4  # fraction of epochs where the loss goes up
LR_HIGH_OSC_SIZE = 0.05  # mean relative size of those rises
LR_LOW_RATIO = 0.5  # final loss >= this fraction of the reference
LR_LOW_MAX_DROP = 0.1  # median relative drop per epoch at most this
LR_LOW_MONOTONE = 0.8  # fraction of epochs where the loss falls
NOISE_CV = 1.0  # per-batch std/mean around the trend
VANISH_RATIO = 1e-3  # first-layer / last-layer gradient RMS
EXPLODE_RATIO = 1e2  # first-layer / last-layer gradient RMS
EXPLODE_GROWTH = 1e3  # global gradient norm growth over the run
EXPLODE_RELATIVE = 1e2  # gradient RMS / weight RMS of a layer
DEAD_FRACTION = 0.5  # units of a ReLU layer that never fire
SATURATED_FRACTION = 0.5  # sigmoid/tanh outputs pinned at the limits
SPREAD_RATIO = 100.0  # largest / smallest feature RMS
FAR_MEAN = 10.0  # |mean| of a feature
INITIAL_LOSS_RATIO = 2.0  # initial loss / chance level


def _arr(values: Sequence[float] | None) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    return np.asarray(values, dtype="float64").reshape(-1)


def finite_prefix(values: Sequence[float]) -> np.ndarray:
    """The values before the first NaN/Inf."""
    values = _arr(values)
    bad = np.flatnonzero(~np.isfinite(values))
    return values[: bad[0]] if bad.size else values


def recover_batch_losses(
    running_means: Sequence[float], steps: Sequence[int] | None = None
) -> np.ndarray:
    """Per-batch losses from Keras 3's running mean of the epoch.

    Keras 3 logs, at the end of batch `k` (1-based), the mean `m_k` of the
    batch losses so far, so the batch's own loss is

    ```
    l_k = k * m_k - (k - 1) * m_{k-1}
    ```

    With `steps` (the cumulative step count at each log, for
    `steps_per_execution > 1`) each value is the mean over the batches since
    the previous log: `(s_k m_k - s_{k-1} m_{k-1}) / (s_k - s_{k-1})`.

    Args:
        running_means: the logged running means of one epoch.
        steps: cumulative step counts at each log. Defaults to 1, 2, 3...

    Returns:
        The per-batch losses, as a float64 array.
    """
    m = _arr(running_means)
    s = np.arange(1, m.size + 1, dtype="float64") if steps is None else _arr(
        steps
    )
    if s.size != m.size:
        raise ValueError(
            "`steps` must have one entry per running mean. Received: "
            f"{s.size} steps for {m.size} means"
        )
    total = s * m
    prev_total = np.concatenate([[0.0], total[:-1]])
    prev_s = np.concatenate([[0.0], s[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total - prev_total) / np.maximum(s - prev_s, 1.0)


def constant_predictor_loss(y: Any, loss: Any, num_outputs: int | None = None):
    """The loss of the best constant predictor, from the training targets.

    Class-prior cross-entropy `-sum_c p_c log p_c` for (sparse) categorical
    and binary cross-entropy; the target variance for mean squared error;
    the mean absolute deviation from the median for mean absolute error.

    Args:
        y: the targets (a sample of them is enough).
        loss: the compiled loss: a name, a `keras.losses.Loss` or a function.
        num_outputs: number of classes for sparse labels (only used to
            check the labels). Defaults to `None`.

    Returns:
        The baseline loss as a float, or `None` for an unknown loss.
    """
    name = loss_name(loss)
    if name is None or y is None:
        return None
    y = np.asarray(y, dtype="float64")
    if y.size == 0:
        return None
    eps = 1e-12
    if "sparse_categorical" in name:
        labels = y.reshape(-1).astype("int64")
        p = np.bincount(labels) / labels.size
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())
    if "categorical_crossentropy" in name:
        p = y.reshape(-1, y.shape[-1]).mean(axis=0)
        p = p[p > eps]
        return float(-(p * np.log(p)).sum())
    if "binary_crossentropy" in name:
        p = np.clip(y.reshape(y.shape[0], -1).mean(axis=0), eps, 1 - eps)
        h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
        return float(h.mean())
    if name in ("mse", "mean_squared_error"):
        return float(y.reshape(y.shape[0], -1).var(axis=0).mean())
    if name in ("mae", "mean_absolute_error"):
        flat = y.reshape(y.shape[0], -1)
        return float(np.abs(flat - np.median(flat, axis=0)).mean())
    return None


def loss_name(loss: Any) -> str | None:
    """A lowercase name for a compiled loss, or None."""
    if loss is None:
        return None
    if isinstance(loss, (list, tuple, dict)):
        return None  # several outputs: no single baseline
    if isinstance(loss, str):
        name = loss
    else:
        fn = getattr(loss, "fn", None)
        name = getattr(fn, "__name__", None) or getattr(loss, "name", None)
        name = name or getattr(loss, "__name__", None)
    if not name:
        return None
    name = str(name).lower()
    aliases = {
        "meansquarederror": "mean_squared_error",
        "meanabsoluteerror": "mean_absolute_error",
        "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
        "categoricalcrossentropy": "categorical_crossentropy",
        "binarycrossentropy": "binary_crossentropy",
    }
    return aliases.get(name.replace("_", ""), name)


def chance_loss(loss: Any, num_outputs: int | None) -> float | None:
    """Cross-entropy of a uniform guess: `-log(1/C)` for C classes."""
    name = loss_name(loss)
    if name is None or not num_outputs:
        return None
    if "categorical_crossentropy" in name and num_outputs >= 2:
        return math.log(num_outputs)
    if "binary_crossentropy" in name:
        return math.log(2.0)
    return None


def _reference(
    loss: np.ndarray, baseline_loss: float | None, initial_loss: float | None
) -> tuple[float, str]:
    if baseline_loss is not None and baseline_loss > 0:
        return float(baseline_loss), "constant predictor"
    if (
        initial_loss is not None
        and math.isfinite(initial_loss)
        and initial_loss > 0
    ):
        return float(initial_loss), "initial loss"
    return float(loss[0]), "first epoch"


def check_diverged(
    loss: Sequence[float],
    val_loss: Sequence[float] | None = None,
    batch_losses: Sequence[Sequence[float]] | None = None,
) -> list[Finding]:
    """`diverged`: the loss became NaN or Inf (an error).

    Args:
        loss: per-epoch training loss.
        val_loss: per-epoch validation loss, if any.
        batch_losses: per epoch, the logged batch losses, if any.
    """
    candidates = []
    for where, values in (("loss", loss), ("val_loss", val_loss)):
        values = _arr(values)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            candidates.append((int(bad[0]), -1, where, values[bad[0]]))
    for epoch, batches in enumerate(batch_losses or []):
        values = _arr(batches)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            first = int(bad[0])
            candidates.append((epoch, first, "batch loss", values[first]))
            break
    if not candidates:
        return []
    epoch, batch, where, value = min(candidates, key=lambda c: (c[0], c[1]))
    finite = finite_prefix(loss)
    evidence = {
        "where": where if batch < 0 else f"loss of batch {batch}",
        "value": str(float(value)),
        "last_finite_loss": float(finite[-1]) if finite.size else None,
    }
    return [Finding("diverged", "error", epoch, evidence)]


def check_overfitting(
    loss: Sequence[float], val_loss: Sequence[float]
) -> list[Finding]:
    """`overfitting`: validation loss rises from its minimum while the
    training loss keeps falling and the gap grows.

    The rise must exceed `OVERFIT_RISE` of the best validation loss and
    three times the validation curve's own noise around its trend, and last
    at least `OVERFIT_MIN_AFTER` epochs; the finding's epoch is the first
    epoch after the best one.
    """
    loss, val = _arr(loss), _arr(val_loss)
    n = min(loss.size, val.size)
    loss, val = loss[:n], val[:n]
    if n < 4 or not (np.isfinite(loss).all() and np.isfinite(val).all()):
        return []
    best = int(np.argmin(val))
    after = n - 1 - best
    if after < OVERFIT_MIN_AFTER:
        return []
    rise = val[-1] - val[best]
    # Noise of the curve around its trend: second differences remove a
    # locally linear trend; for white noise of std s, median |d2| ~ 1.65 s.
    noise = float(np.median(np.abs(np.diff(val, 2)))) / 1.65
    gap_best = val[best] - loss[best]
    gap_last = val[-1] - loss[-1]
    tail_mean = float(val[best + 1 :].mean())
    if (
        rise > OVERFIT_RISE * val[best]
        and rise > 3 * noise
        and tail_mean > val[best] * (1 + OVERFIT_RISE / 2)
        and loss[-1] < loss[best]
        and gap_last > gap_best
    ):
        evidence = {
            "best_epoch": best,
            "val_loss_best": float(val[best]),
            "val_loss_last": float(val[-1]),
            "loss_best": float(loss[best]),
            "loss_last": float(loss[-1]),
            "gap_best": float(gap_best),
            "gap_last": float(gap_last),
        }
        return [Finding("overfitting", "warning", best + 1, evidence)]
    return []


def _tail_drop(loss: np.ndarray) -> float:
    """Relative drop of the loss over the last third of the run."""
    k = max(0, loss.size - max(2, loss.size // 3) - 1)
    return float((loss[k] - loss[-1]) / max(abs(loss[k]), 1e-12))


def check_underfitting(
    loss: Sequence[float],
    val_loss: Sequence[float] | None = None,
    baseline_loss: float | None = None,
    initial_loss: float | None = None,
) -> list[Finding]:
    """`underfitting`: the training loss sits flat, far from zero.

    The final loss is compared with the constant predictor's loss
    (`baseline_loss`): at least `UNDERFIT_RATIO` of it means large bias.
    Without a baseline, the initial loss or the first epoch's loss is the
    reference and the loss must barely drop (`UNDERFIT_DROP_NO_REF`). The
    curve must be flat (less than `PLATEAU_TAIL` relative drop over its
    last third) and, with validation data, validation ≈ training.
    """
    loss = finite_prefix(loss)
    if loss.size < 3:
        return []
    reference, kind = _reference(loss, baseline_loss, initial_loss)
    ratio = float(loss[-1] / reference)
    threshold = UNDERFIT_DROP_NO_REF if kind == "first epoch" else (
        UNDERFIT_RATIO
    )
    tail = _tail_drop(loss)
    val = finite_prefix(val_loss) if val_loss is not None else np.zeros(0)
    close = True
    if val.size:
        close = val[-1] <= 1.5 * loss[min(val.size, loss.size) - 1] + 1e-12
    if ratio >= threshold and tail < PLATEAU_TAIL and close:
        evidence = {
            "loss_first": float(loss[0]),
            "loss_last": float(loss[-1]),
            "reference": reference,
            "reference_kind": kind,
            "ratio": ratio,
            "tail_relative_drop": tail,
        }
        if val.size:
            evidence["val_loss_last"] = float(val[-1])
        return [Finding("underfitting", "warning", None, evidence)]
    return []


def check_lr_too_low(
    loss: Sequence[float],
    baseline_loss: float | None = None,
    initial_loss: float | None = None,
) -> list[Finding]:
    """`lr_too_low`: the loss falls steadily but slowly, far from a fit.

    Most epochs (`LR_LOW_MONOTONE`) lower the loss, by a small median
    relative amount (at most `LR_LOW_MAX_DROP` per epoch), the fall has not
    levelled off (unlike underfitting's plateau), and the final loss is
    still at least `LR_LOW_RATIO` of the reference loss.
    """
    loss = finite_prefix(loss)
    if loss.size < 4:
        return []
    reference, kind = _reference(loss, baseline_loss, initial_loss)
    ratio = float(loss[-1] / reference)
    drops = -np.diff(loss) / np.maximum(np.abs(loss[:-1]), 1e-12)
    falling = float((drops > 0).mean())
    median_drop = float(np.median(drops))
    tail = _tail_drop(loss)
    threshold = LR_LOW_RATIO if kind != "first epoch" else UNDERFIT_DROP_NO_REF
    if (
        ratio >= threshold
        and falling >= LR_LOW_MONOTONE
        and 0 < median_drop <= LR_LOW_MAX_DROP
        and tail >= PLATEAU_TAIL
    ):
        evidence = {
            "loss_first": float(loss[0]),
            "loss_last": float(loss[-1]),
            "reference": reference,
            "reference_kind": kind,
            "ratio": ratio,
            "mean_relative_drop": float(drops.mean()),
            "fraction_falling": falling,
        }
        return [Finding("lr_too_low", "warning", None, evidence)]
    return []


def check_lr_too_high(
    loss: Sequence[float],
    batch_losses: Sequence[Sequence[float]] | None = None,
    initial_loss: float | None = None,
) -> list[Finding]:
    """`lr_too_high`: a finite loss that rises or oscillates.

    Any of: the epoch loss climbs to `LR_HIGH_RISE` x its earlier minimum;
    the per-batch loss of the first epoch settles (median of its second
    half) above `LR_HIGH_START` x the initial loss; or the epoch loss goes
    up in at least `LR_HIGH_OSC_FRACTION` of the epochs by
    `LR_HIGH_OSC_SIZE` on average.
    """
    loss = finite_prefix(loss)
    reasons = []
    epoch = None
    evidence: dict = {}
    if loss.size >= 2:
        running_min = np.minimum.accumulate(loss)
        rise = loss[1:] / np.maximum(running_min[:-1], 1e-12)
        hits = np.flatnonzero(rise >= LR_HIGH_RISE)
        if hits.size:
            epoch = int(hits[0]) + 1
            evidence["loss_min_before"] = float(running_min[hits[0]])
            evidence["loss_at_rise"] = float(loss[epoch])
            reasons.append(
                f"loss rises from {running_min[hits[0]]:.4g} to "
                f"{loss[epoch]:.4g} at epoch {epoch}"
            )
    if batch_losses and initial_loss and math.isfinite(initial_loss):
        first = finite_prefix(batch_losses[0])
        if first.size >= 4:
            settled = float(np.median(first[first.size // 2 :]))
            if settled >= LR_HIGH_START * initial_loss:
                epoch = 0 if epoch is None else min(epoch, 0)
                evidence["initial_loss"] = float(initial_loss)
                evidence["first_epoch_batch_loss"] = settled
                reasons.append(
                    f"batch loss climbs from {initial_loss:.4g} to "
                    f"{settled:.4g} in the first epoch"
                )
    if loss.size >= 5:
        changes = np.diff(loss) / np.maximum(np.abs(loss[:-1]), 1e-12)
        ups = changes[changes > 0]
        fraction = ups.size / changes.size
        size = float(ups.mean()) if ups.size else 0.0
        if fraction >= LR_HIGH_OSC_FRACTION and size >= LR_HIGH_OSC_SIZE:
            evidence["fraction_rising"] = float(fraction)
            evidence["mean_rise"] = size
            reasons.append(
                f"loss goes up in {fraction:.0%} of the epochs "
                f"(by {size:.0%} on average)"
            )
    if not reasons:
        return []
    evidence["reason"] = "; ".join(reasons)
    return [Finding("lr_too_high", "warning", epoch, evidence)]


def check_noisy_loss(
    batch_losses: Sequence[Sequence[float]],
) -> list[Finding]:
    """`noisy_loss`: per-batch losses scatter widely around their trend.

    Per epoch (the first one excluded: its loss falls fast), a straight
    line is fitted to the log batch losses; the noise is the std of the
    losses around it divided by their mean. The median over epochs above
    `NOISE_CV` is a too-small batch.
    """
    cvs = []
    sizes = []
    for batches in list(batch_losses or [])[1:]:
        values = _arr(batches)
        values = values[np.isfinite(values)]
        if values.size < 8:
            continue
        # A log-linear trend: batch losses are positive and skewed.
        t = np.arange(values.size, dtype="float64")
        logs = np.log(np.maximum(values, 1e-12))
        slope, icpt = np.polyfit(t, logs, 1)
        trend = np.exp(slope * t + icpt)
        cvs.append(float(np.std(values - trend) / max(values.mean(), 1e-12)))
        sizes.append(values.size)
    if not cvs:
        return []
    noise = float(np.median(cvs))
    if noise > NOISE_CV:
        evidence = {
            "noise": noise,
            "epochs_used": len(cvs),
            "batches": int(np.median(sizes)),
        }
        return [Finding("noisy_loss", "warning", None, evidence)]
    return []


def check_gradients(
    grad_rms: Sequence[Sequence[float]],
    layer_names: Sequence[str],
    steps: Sequence[int] | None = None,
    weight_rms: Sequence[Sequence[float]] | None = None,
) -> list[Finding]:
    """`vanishing_gradients` / `exploding_gradients` from per-layer norms.

    `grad_rms[p][i]` is the root-mean-square gradient of layer `i`'s kernel
    at probe `p` (layers in forward order), `weight_rms[p][i]` the RMS of
    that kernel. Judged on the median over the later half of the probes:

    - vanishing: first/last layer gradient ratio below `VANISH_RATIO`;
    - exploding: that ratio above `EXPLODE_RATIO`; or a layer whose gradient
      RMS exceeds `EXPLODE_RELATIVE` x its weight RMS (a plain SGD step
      would then be huge for any sane learning rate); or the global
      gradient norm growing `EXPLODE_GROWTH`-fold over the run (marked
      `kind="growth"`); or NaN/Inf gradients.
    """
    g = np.asarray(grad_rms, dtype="float64")
    if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] == 0:
        return []
    names = list(layer_names)
    if len(names) != g.shape[1]:
        names = [f"layer_{i}" for i in range(g.shape[1])]
    nonfinite = ~np.isfinite(g).all(axis=1)
    if nonfinite.any():
        p = int(np.flatnonzero(nonfinite)[0])
        evidence = {
            "reason": f"gradients became NaN/Inf at probe {p}",
            "kind": "nonfinite",
            "probe": p,
        }
        if steps is not None and len(steps) > p:
            evidence["step"] = int(steps[p])
        return [Finding("exploding_gradients", "error", None, evidence)]
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
            if ratio < VANISH_RATIO:
                return [
                    Finding("vanishing_gradients", "warning", None, evidence)
                ]
            if ratio > EXPLODE_RATIO:
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
            if rel[worst] > EXPLODE_RELATIVE:
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
    if g.shape[0] >= 3 and growth > EXPLODE_GROWTH:
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


def _persistent_layers(
    fractions: Sequence[dict], threshold: float
) -> list[tuple[str, float]]:
    """Layers whose fraction stays >= threshold over the later probes."""
    if not fractions:
        return []
    later = list(fractions)[len(fractions) // 2 :]
    hits = []
    for name in later[-1]:
        values = [f[name] for f in later if name in f]
        if values and min(values) >= threshold:
            hits.append((name, float(np.median(values))))
    return hits


def check_dead_units(
    dead_fractions: Sequence[dict[str, float]],
    units: dict[str, int] | None = None,
) -> list[Finding]:
    """`dead_units`: ReLU units that never fire on the probe batch.

    `dead_fractions[p][layer]` is the fraction of a ReLU layer's units (or
    channels) whose output is zero for every probe example at probe `p`. A
    layer with at least `DEAD_FRACTION` dead units in every later probe is
    reported.
    """
    findings = []
    for name, fraction in _persistent_layers(dead_fractions, DEAD_FRACTION):
        n = int((units or {}).get(name, 0))
        evidence = {
            "layer": name,
            "fraction": fraction,
            "units": n,
            "dead": round(fraction * n),
        }
        findings.append(Finding("dead_units", "warning", None, evidence))
    return findings


def check_saturated_units(
    saturated_fractions: Sequence[dict[str, float]],
    activations: dict[str, str] | None = None,
) -> list[Finding]:
    """`saturated_units`: sigmoid/tanh outputs pinned at their limits.

    `saturated_fractions[p][layer]` is the fraction of a sigmoid/tanh
    layer's outputs within 1% of its limits (sigmoid < 0.01 or > 0.99,
    |tanh| > 0.99) at probe `p`; `SATURATED_FRACTION` or more in every
    later probe is reported.
    """
    findings = []
    for name, fraction in _persistent_layers(
        saturated_fractions, SATURATED_FRACTION
    ):
        evidence = {
            "layer": name,
            "fraction": fraction,
            "activation": (activations or {}).get(name, "sigmoid/tanh"),
        }
        findings.append(Finding("saturated_units", "warning", None, evidence))
    return findings


def input_statistics(x: Any) -> dict | None:
    """Per-feature mean and std of a float input batch (last axis).

    Returns None for non-numeric or integer inputs (token ids).
    """
    try:
        x = np.asarray(x)
    except (TypeError, ValueError):
        return None
    if x.dtype.kind not in "fc" or x.ndim < 2 or x.shape[0] < 2:
        return None
    flat = x.reshape(-1, x.shape[-1]).astype("float64")
    return {
        "mean": flat.mean(axis=0).tolist(),
        "std": flat.std(axis=0).tolist(),
    }


def check_unscaled_inputs(
    mean: Sequence[float], std: Sequence[float]
) -> list[Finding]:
    """`unscaled_inputs`: features on very different scales or off-center.

    From the per-feature means `m_i` and stds `sigma_i` of the first
    batches: the RMS `sqrt(m_i^2 + sigma_i^2)` of the largest feature over
    the smallest (non-constant) one above `SPREAD_RATIO`, or a feature mean
    beyond `FAR_MEAN` in absolute value.
    """
    mean, std = _arr(mean), _arr(std)
    if mean.size == 0 or mean.size != std.size:
        return []
    active = std > 1e-8
    rms = np.sqrt(mean**2 + std**2)
    reasons = []
    evidence: dict = {}
    if active.sum() >= 2:
        spread = float(rms[active].max() / rms[active].min())
        if spread > SPREAD_RATIO:
            reasons.append(
                f"feature scales differ {spread:.3g}-fold (RMS "
                f"{rms[active].min():.3g} to {rms[active].max():.3g})"
            )
            evidence["spread"] = spread
    far = float(np.abs(mean).max())
    if far > FAR_MEAN:
        reasons.append(f"a feature has mean {mean[np.abs(mean).argmax()]:.3g}")
        evidence["max_abs_mean"] = far
    if not reasons:
        return []
    shown = min(mean.size, 32)
    evidence.update(
        reason="; ".join(reasons),
        feature_mean=mean[:shown].tolist(),
        feature_std=std[:shown].tolist(),
        features=int(mean.size),
    )
    return [Finding("unscaled_inputs", "warning", None, evidence)]


def check_initial_loss(
    initial_loss: float | None, chance: float | None
) -> list[Finding]:
    """`high_initial_loss`: the loss before training is far above chance.

    For C classes a random-guess model has cross-entropy `-log(1/C)`; an
    initial loss above `INITIAL_LOSS_RATIO` x that points to a broken
    initialization or a loss/activation mismatch.
    """
    if initial_loss is None or chance is None or chance <= 0:
        return []
    if not math.isfinite(initial_loss):
        return []
    ratio = float(initial_loss / chance)
    if ratio > INITIAL_LOSS_RATIO:
        evidence = {
            "initial_loss": float(initial_loss),
            "chance_loss": float(chance),
            "ratio": ratio,
        }
        return [Finding("high_initial_loss", "warning", 0, evidence)]
    return []
