"""Rules over loss curves: diverged, overfitting, fit progress, lr, noise.

Each rule is a pure function of arrays and returns a list of `Finding`
(empty when nothing is wrong). Epoch arrays carry Keras' 0-based epoch
index of each value, so curves with missing epochs (`validation_freq`,
`initial_epoch`) are never misaligned and a missing value is never a NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from keras_training_kit.diagnosis.finding import Finding
from keras_training_kit.diagnosis.rules import thresholds as T
from keras_training_kit.diagnosis.rules._stats import (
    arr,
    chunk_means,
    finite_prefix,
    mann_kendall_z,
    noise_std,
)


def _epochs(values: np.ndarray, epochs: Sequence[int] | None) -> np.ndarray:
    if epochs is None:
        return np.arange(values.size)
    return np.asarray(epochs, dtype="int64")[: values.size]


def check_diverged(
    loss: Sequence[float],
    val_loss: Sequence[float] | None = None,
    batch_losses: Sequence[Sequence[float]] | None = None,
    *,
    epochs: Sequence[int] | None = None,
    val_epochs: Sequence[int] | None = None,
    nonfinite_weights: dict | None = None,
    nonfinite_activations: dict | None = None,
    inputs: dict | None = None,
    batches_per_loss: int = 1,
) -> list[Finding]:
    """`diverged` (an error): the loss, the weights or the activations
    became NaN/Inf.

    The earliest event is reported; NaN/Inf found in the training inputs is
    named as the cause.

    Args:
        loss: per-epoch training loss.
        val_loss: validation loss of the validated epochs.
        batch_losses: per epoch, its batch losses.
        epochs: the epoch index of each `loss` entry (default 0, 1, ...).
        val_epochs: the epoch index of each `val_loss` entry.
        nonfinite_weights: `{"epoch", "step", "layers"}` when weights
            became NaN/Inf.
        nonfinite_activations: `{"epoch", "step", "layers"}` likewise for
            hidden activations on the probe batch.
        inputs: input statistics with `nonfinite` and `rows_nonfinite`.
        batches_per_loss: batches per recorded batch loss
            (`steps_per_execution`).
    """
    loss = arr(loss)
    candidates = []  # (epoch, batch, where, value)
    for where, values, idx in (
        ("loss", loss, epochs),
        ("val_loss", arr(val_loss), val_epochs),
    ):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            e = _epochs(values, idx)[bad[0]]
            candidates.append((int(e), math.inf, where, str(values[bad[0]])))
    e0 = 0 if epochs is None or not len(epochs) else int(epochs[0])
    for i, batches in enumerate(batch_losses or []):
        values = arr(batches)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            k = max(1, int(batches_per_loss))
            first, last = int(bad[0]) * k + 1, (int(bad[0]) + 1) * k
            where = (f"the loss of batch {first}" if k == 1 else
                     f"the loss of batches {first}-{last}")
            candidates.append((e0 + i, int(bad[0]), where, str(values[bad[0]])))
            break
    for what, event in (
        ("weights", nonfinite_weights),
        ("activations", nonfinite_activations),
    ):
        if event:
            layers = ", ".join(f"`{n}`" for n in event.get("layers", [])[:4])
            candidates.append((
                int(event.get("epoch", 0)),
                -1,
                f"the {what} of {layers or 'the model'}",
                "NaN/Inf",
            ))
    if not candidates:
        return []
    epoch, _, where, value = min(candidates, key=lambda c: (c[0], c[1]))
    finite = finite_prefix(loss)
    evidence = {
        "where": where,
        "value": value,
        "last_finite_loss": float(finite[-1]) if finite.size else None,
    }
    if inputs and inputs.get("nonfinite"):
        evidence["cause"] = (
            f"the training inputs hold {inputs['nonfinite']} NaN/Inf values "
            f"in {inputs.get('rows_nonfinite', '?')} rows"
        )
    return [Finding("diverged", "error", epoch, evidence)]


def check_overfitting(
    loss: Sequence[float],
    val_loss: Sequence[float],
    *,
    epochs: Sequence[int] | None = None,
    val_epochs: Sequence[int] | None = None,
    early_stopping: dict | None = None,
    reference: float | None = None,
) -> list[Finding]:
    """`overfitting`: validation loss rises from its minimum while the
    training loss keeps falling and the gap grows.

    On the validated epochs: the rise exceeds `OVERFIT_RISE` of the best
    validation loss, `OVERFIT_NOISE` x the curve's own noise and (with a
    reference loss) `OVERFIT_MIN_REFERENCE` of the reference, so that a
    wiggle of an almost perfect fit is not reported; it lasts at least
    `OVERFIT_MIN_AFTER` validated epochs, and the train/val gap grows.
    When an early-stopping callback restored the best epoch's weights, the
    remedy is already applied: nothing is reported.
    """
    loss, val = arr(loss), arr(val_loss)
    le, ve = _epochs(loss, epochs), _epochs(val, val_epochs)
    at = {int(e): x for e, x in zip(le, loss)}
    keep = [i for i, e in enumerate(ve) if int(e) in at]
    val, ve = val[keep], ve[keep]
    train = np.array([at[int(e)] for e in ve])
    n = val.size
    if n < 4 or not (np.isfinite(train).all() and np.isfinite(val).all()):
        return []
    best = int(np.argmin(val))
    if n - 1 - best < T.OVERFIT_MIN_AFTER:
        return []
    if early_stopping and early_stopping.get("restored"):
        return []
    rise = val[-1] - val[best]
    noise = noise_std(val)
    gap_best, gap_last = val[best] - train[best], val[-1] - train[-1]
    tail_mean = float(val[best + 1 :].mean())
    if (
        rise > T.OVERFIT_RISE * val[best]
        and rise > T.OVERFIT_NOISE * noise
        and (not reference or rise > T.OVERFIT_MIN_REFERENCE * reference)
        and tail_mean > val[best] * (1 + T.OVERFIT_RISE / 2)
        and train[-1] < train[best]
        and gap_last > gap_best
    ):
        evidence = {
            "best_epoch": int(ve[best]) + 1,
            "val_loss_best": float(val[best]),
            "val_loss_last": float(val[-1]),
            "loss_best": float(train[best]),
            "loss_last": float(train[-1]),
            "gap_best": float(gap_best),
            "gap_last": float(gap_last),
        }
        return [Finding("overfitting", "warning", int(ve[best]) + 1, evidence)]
    return []


def final_level(loss: np.ndarray, batch_losses: Sequence | None) -> float:
    """The loss reached at the end: the last quarter of the last epoch's
    batches when known (an epoch mean still carries its early batches)."""
    last = arr(batch_losses[-1]) if batch_losses else np.zeros(0)
    last = last[np.isfinite(last)]
    if last.size >= 4:
        return float(last[-max(1, last.size // 4) :].mean())
    return float(loss[-1])


def trend(loss: np.ndarray, batch_losses: Sequence | None) -> tuple[float, int]:
    """Mann-Kendall z of the later half of the run, and the points used.

    The later half of all batch losses, averaged into `TREND_CHUNKS`
    chunks; the per-epoch losses when there are too few batches.
    """
    flat = np.concatenate([arr(b) for b in batch_losses or []] or [[]])
    flat = flat[np.isfinite(flat)]
    series = chunk_means(flat[flat.size // 2 :], T.TREND_CHUNKS)
    if series.size < 10:
        series = loss[loss.size // 2 :] if loss.size >= 8 else loss
    if series.size < 4:
        return 0.0, int(series.size)
    return mann_kendall_z(series), int(series.size)


def steadiness(loss: np.ndarray, batch_losses: Sequence | None) -> float:
    """How steady the decline is: the drop over the second half of the run
    over the drop over the first half (about 1 for a constant slow
    decline, near 0 for a curve that has converged to a plateau; inf when
    only the second half falls). Ends are averaged over 3 of 2 x
    `TREND_CHUNKS` chunks of the batch losses (the epoch losses when
    there are too few batches)."""
    flat = np.concatenate([arr(b) for b in batch_losses or []] or [[]])
    series = chunk_means(flat, 2 * T.TREND_CHUNKS)
    if series.size < 9:
        series = loss[np.isfinite(loss)]
    if series.size < 3:
        return math.nan
    k = max(1, series.size // 10)
    mid = series.size // 2
    start = series[:k].mean()
    middle = series[max(0, mid - k // 2): mid - k // 2 + k].mean()
    end = series[-k:].mean()
    first, second = start - middle, middle - end
    if first <= 0:
        return math.inf if second > 0 else 0.0
    return float(second / first)


def check_progress(
    loss: Sequence[float],
    batch_losses: Sequence[Sequence[float]] | None = None,
    *,
    reference: float,
    reference_kind: str,
    val_loss: Sequence[float] | None = None,
    update_ratio: float | None = None,
    learning_rate: float | None = None,
    start_loss: float | None = None,
) -> list[Finding]:
    """`lr_too_low` or `underfitting`: the loss stays far from a fit.

    The final loss is at least `FAR_FROM_FIT` of the reference (the
    constant predictor's loss; without one, `FAR_FROM_FIT_NO_REFERENCE` of
    the first epoch's). Then the later half of the curve decides, judged
    against its own noise by a Mann-Kendall trend test:

    - still declining (z <= -`TREND_Z`) at a steady rate (the second
      half of the run drops at least `LR_LOW_STEADY` of what the first
      half dropped: not a converging curve), or weights that barely move
      (update-to-weight ratio <= `UPDATE_RATIO_LOW`): `lr_too_low`, the
      course's "slow decay" of a too-small learning rate;
    - flat within noise, with validation close to training and also far
      from a fit (a model that fits in inference mode, where dropout and
      noise layers are off, is not biased): `underfitting` (large bias),
      unless the weights are rewritten every step (ratio >=
      `UPDATE_RATIO_HIGH`): then `lr_too_high` (a loss that bounces high).

    Weights that no longer move while the loss ends at `LR_HIGH_START` x
    its value at the start (`start_loss`, penalties included) or more are
    a net wrecked by too large steps (units dead after a blow-up), not a
    too small rate: `lr_too_high`.
    """
    loss = finite_prefix(loss)
    if loss.size == 0 or not reference or reference <= 0:
        return []
    level = final_level(loss, batch_losses)
    ratio = level / reference
    far = (
        T.FAR_FROM_FIT_NO_REFERENCE
        if reference_kind == "first epoch"
        else T.FAR_FROM_FIT
    )
    if ratio < far:
        return []
    z, points = trend(loss, batch_losses)
    steady = steadiness(loss, batch_losses)
    evidence = {
        "loss_first": float(loss[0]),
        "loss_last": level,
        "reference": float(reference),
        "reference_kind": reference_kind,
        "ratio": float(ratio),
        "trend_z": float(z),
        "trend_points": points,
        "steadiness": steady,
    }
    if update_ratio is not None:
        evidence["update_ratio"] = float(update_ratio)
    if learning_rate is not None:
        evidence["learning_rate"] = float(learning_rate)
    declining = (
        points >= 4 and z <= -T.TREND_Z and steady >= T.LR_LOW_STEADY
    )
    frozen = update_ratio is not None and update_ratio <= T.UPDATE_RATIO_LOW
    if frozen and not declining and start_loss and (
        level >= T.LR_HIGH_START * start_loss
    ):
        evidence["reason"] = (
            f"loss ends at {level / start_loss:.1f} x its start "
            f"({start_loss:.4g}) and the weights no longer move: too large "
            "steps wrecked the net"
        )
        return [Finding("lr_too_high", "warning", None, evidence)]
    if declining or frozen:
        evidence["why"] = (
            "still falling steadily (trend z = %.2f)" % z
            if declining
            else "the weights barely move"
        )
        return [Finding("lr_too_low", "warning", None, evidence)]
    if points < 4 and update_ratio is None:
        return []  # too short to tell a plateau from a slow start
    if update_ratio is not None and update_ratio >= T.UPDATE_RATIO_HIGH:
        evidence["reason"] = (
            f"loss stays at {ratio:.2f} of the {reference_kind} loss while "
            f"the weights change by {update_ratio:.2g} of their size per step"
        )
        return [Finding("lr_too_high", "warning", None, evidence)]
    val = finite_prefix(val_loss) if val_loss is not None else np.zeros(0)
    if val.size and val[-1] > 1.5 * loss[-1] + 1e-12:
        return []  # validation far above training: not a plain bias
    if val.size and val[-1] / reference < far:
        # In inference mode (no dropout, no noise layers) the model fits:
        # the training loss is high because of what training adds.
        return []
    if val.size:
        evidence["val_loss_last"] = float(val[-1])
    return [Finding("underfitting", "warning", None, evidence)]


def check_lr_too_high(
    loss: Sequence[float],
    batch_losses: Sequence[Sequence[float]] | None = None,
    initial_loss: float | None = None,
    *,
    epochs: Sequence[int] | None = None,
    reference: float | None = None,
    batches_per_loss: int = 1,
    initial_penalty: float | None = None,
) -> list[Finding]:
    """`lr_too_high`: a finite loss that rises or oscillates.

    Any of: the epoch loss climbs to `LR_HIGH_RISE` x its earlier minimum
    and the run ends at least `LR_HIGH_PERSIST` x its best (a spike the run
    recovers from, e.g. the peak of a one-cycle schedule, is not reported;
    nor is a rise that stays below `NOISE_MIN_LEVEL` of the reference);
    the first epoch's batch loss settles (median of its second half) above
    `LR_HIGH_START` x the initial loss; or, among epochs whose loss is
    still above `NOISE_MIN_LEVEL` of the reference, the loss goes up in at
    least `LR_HIGH_OSC_FRACTION` of them by `LR_HIGH_OSC_SIZE` on average.

    The first epoch's climb compares like with like: Keras' batch loss
    carries the regularization penalty, so the start is `initial_loss`
    (the data loss) plus `initial_penalty`, or the first batch's loss
    when that is larger; with `batches_per_loss > 1`
    (`steps_per_execution`) the first value averages trained batches too,
    so it stands for the start only when the penalty is unknown.
    """
    loss = finite_prefix(loss)
    ep = _epochs(loss, epochs)
    reasons, evidence = [], {}
    epoch = None
    # Near a perfect fit a rise is a large relative change that costs
    # nothing (the same floor for the rise and the oscillation).
    floor = T.NOISE_MIN_LEVEL * reference if reference else 0.0
    if loss.size >= 2:
        running_min = np.minimum.accumulate(loss)
        rise = loss[1:] / np.maximum(running_min[:-1], 1e-12)
        hits = np.flatnonzero((rise >= T.LR_HIGH_RISE) & (loss[1:] >= floor))
        if hits.size and loss[-1] >= T.LR_HIGH_PERSIST * loss.min():
            i = int(hits[0]) + 1
            epoch = int(ep[i])
            evidence["loss_min_before"] = float(running_min[i - 1])
            evidence["loss_at_rise"] = float(loss[i])
            reasons.append(
                f"loss rises from {running_min[i - 1]:.4g} to "
                f"{loss[i]:.4g} at epoch {epoch + 1}"
            )
    if batch_losses and initial_loss and math.isfinite(initial_loss):
        first = finite_prefix(batch_losses[0])
        if first.size >= 4:
            settled = float(np.median(first[first.size // 2 :]))
            # The first batch's loss is Keras' loss at the initial weights
            # with the regularization penalties; `initial_loss` is the data
            # loss alone: compare like with like.
            start = float(initial_loss) + (initial_penalty or 0.0)
            if batches_per_loss <= 1 or initial_penalty is None:
                start = max(start, float(first[0]))
            initial_loss = start
            if settled >= T.LR_HIGH_START * initial_loss:
                epoch = int(ep[0]) if ep.size else 0
                evidence["initial_loss"] = float(initial_loss)
                evidence["first_epoch_batch_loss"] = settled
                reasons.append(
                    f"batch loss climbs from {initial_loss:.4g} to "
                    f"{settled:.4g} in the first epoch"
                )
    if loss.size >= 5:
        changes = np.diff(loss) / np.maximum(np.abs(loss[:-1]), 1e-12)
        changes = changes[loss[:-1] >= floor]
        ups = changes[changes > 0]
        if changes.size >= 4:
            fraction = ups.size / changes.size
            size = float(ups.mean()) if ups.size else 0.0
            if (
                fraction >= T.LR_HIGH_OSC_FRACTION
                and size >= T.LR_HIGH_OSC_SIZE
            ):
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


def batch_noise(values: np.ndarray) -> float:
    """Std of one epoch's batch losses around a log-linear trend, over
    their mean (batch losses are positive and skewed)."""
    t = np.arange(values.size, dtype="float64")
    slope, icpt = np.polyfit(t, np.log(np.maximum(values, 1e-12)), 1)
    fitted = np.exp(slope * t + icpt)
    return float(np.std(values - fitted) / max(values.mean(), 1e-12))


def check_noisy_loss(
    batch_losses: Sequence[Sequence[float]],
    reference: float | None = None,
) -> list[Finding]:
    """`noisy_loss`: per-batch losses scatter widely around their trend.

    Per epoch (the first excluded: its loss falls fast; and epochs whose
    mean is below `NOISE_MIN_LEVEL` of the reference: near zero any
    scatter is relatively large and harmless), a log-linear trend is fitted
    to the batch losses; the noise is the std around it over their mean.
    The median over epochs above `NOISE_CV` is a too-small batch.
    """
    floor = T.NOISE_MIN_LEVEL * reference if reference else 0.0
    cvs, sizes = [], []
    for batches in list(batch_losses or [])[1:]:
        values = arr(batches)
        values = values[np.isfinite(values)]
        if values.size < 8 or values.mean() < floor:
            continue
        cvs.append(batch_noise(values))
        sizes.append(values.size)
    if not cvs:
        return []
    noise = float(np.median(cvs))
    if noise > T.NOISE_CV:
        evidence = {
            "noise": noise,
            "epochs_used": len(cvs),
            "batches": int(np.median(sizes)),
        }
        return [Finding("noisy_loss", "warning", None, evidence)]
    return []
