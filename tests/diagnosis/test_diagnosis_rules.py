"""Unit tests of each curve and probe rule on synthetic inputs, at and
around its thresholds (read from `rules.thresholds`, so a recalibration
moves the test points with it)."""

import json

import numpy as np
import pytest
from scipy import stats

from keras_training_kit.diagnosis import (
    CODES,
    REMEDIES,
    Finding,
    Remedy,
    RunRecord,
    analyze,
    diagnose,
    rules,
)
from keras_training_kit.diagnosis.rules import thresholds as T


def codes(findings):
    return [f.code for f in findings]


def healthy_curve(n=20, seed=0):
    """A fast-falling training loss and a validation loss that follows."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    loss = 2.3 * np.exp(-t / 3) + 0.05 + rng.normal(0, 0.005, n)
    val = loss * 1.2 + 0.05 + rng.normal(0, 0.01, n)
    return loss, val


# ---------------------------------------------------------------- Finding


def test_finding_text_is_one_based_and_json_round_trips():
    f = Finding("overfitting", "warning", 12, {
        "best_epoch": 12, "val_loss_best": 0.31, "val_loss_last": 0.58,
        "loss_best": 0.2, "loss_last": 0.02, "x": np.float32(1.5),
    })
    text = str(f)
    assert text.startswith("[warning] overfitting from epoch 13")
    assert "val_loss 0.31 -> 0.58 while loss 0.2 -> 0.02" in text
    data = json.loads(json.dumps(f.to_dict()))
    assert data["evidence"]["x"] == 1.5 and data["epoch"] == 12
    assert Finding.from_dict(data) == f
    with pytest.raises(AttributeError):
        f.code = "healthy"  # immutable


def test_finding_rejects_bad_code_severity_and_remedy():
    with pytest.raises(ValueError, match="`code`"):
        Finding("sad", "warning")
    with pytest.raises(ValueError, match="`severity`"):
        Finding("diverged", "fatal")
    with pytest.raises(ValueError, match="`name`"):
        Remedy("pray")


def test_every_code_has_advice_remedies_and_renders():
    for code in CODES:
        f = Finding(code, "info" if code == "healthy" else "warning")
        assert f.advice and code in str(f)
        assert f.remedies == REMEDIES[code]
        assert (code == "healthy") == (not f.remedies)
        assert all(isinstance(r, Remedy) for r in f.remedies)


# ------------------------------------------------------------ statistics


@pytest.mark.parametrize("seed", range(4))
def test_mann_kendall_matches_scipy_kendall_tau(seed):
    x = np.random.default_rng(seed).normal(size=25).cumsum()
    n = x.size
    tau = stats.kendalltau(np.arange(n), x).statistic
    s = tau * n * (n - 1) / 2  # no ties: S = tau * n(n-1)/2
    z = (s - np.sign(s)) / np.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    assert rules.mann_kendall_z(x) == pytest.approx(z, rel=1e-9)


# ---------------------------------------------------------------- curves


def test_healthy_curve_is_healthy_with_and_without_baseline():
    loss, val = healthy_curve()
    for baseline in (None, 2.3):
        found = diagnose({"loss": loss, "val_loss": val}, baseline)
        assert codes(found) == ["healthy"]


@pytest.mark.parametrize("seed", range(5))
def test_healthy_noisy_curves_stay_silent(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(30)
    loss = 2.0 * np.exp(-t / 4) + 0.1 + rng.normal(0, 0.01, 30)
    val = 2.0 * np.exp(-t / 4) + 0.2 + rng.normal(0, 0.02, 30)
    assert codes(diagnose({"loss": loss, "val_loss": val}, 2.3)) == [
        "healthy"
    ]


def test_diverged_first_nan_epoch_and_batch():
    found = rules.check_diverged([1.0, 0.8, float("nan"), float("nan")])
    assert codes(found) == ["diverged"]
    assert found[0].epoch == 2 and found[0].severity == "error"
    assert found[0].evidence["last_finite_loss"] == 0.8
    assert rules.check_diverged([1.0, 1e30, 1e38]) == []  # finite: not NaN
    found = rules.check_diverged([1.0], batch_losses=[[1.0, float("inf")]])
    assert found[0].evidence["where"] == "the loss of batch 2"
    # steps_per_execution=4: each value averages 4 batches
    found = rules.check_diverged([1.0], batch_losses=[[1.0, float("inf")]],
                                 batches_per_loss=4)
    assert found[0].evidence["where"] == "the loss of batches 5-8"


def test_diverged_from_weights_names_the_input_cause():
    found = rules.check_diverged(
        [1.0, 0.9, 0.9],
        nonfinite_weights={"epoch": 1, "layers": ["dense"]},
        inputs={"nonfinite": 3, "rows_nonfinite": 1},
    )
    assert codes(found) == ["diverged"] and found[0].epoch == 1
    assert "weights of `dense`" in found[0].summary
    assert "3 NaN/Inf values in 1 rows" in found[0].summary


def test_diverged_suppresses_curve_rules_after_the_nan():
    found = diagnose({"loss": [2.0, 1.0, 0.5, float("nan"), float("nan")]})
    assert codes(found) == ["diverged"]


def test_missing_validation_epochs_are_not_nan():
    loss, val = healthy_curve(10)
    # validation_freq=2: Keras validates after epochs 1, 3, 5, ... (0-based)
    history = {"loss": list(loss), "val_loss": list(val[1::2])}
    record = RunRecord.from_history(history)
    e, _ = record.curve("val_loss")
    assert e.tolist() == [1, 3, 5, 7, 9]
    assert codes(analyze(record)) == ["healthy"]
    # As a CSV log writes it: None (NA) in the epochs without validation.
    gaps = [v if i % 2 else None for i, v in enumerate(val)]
    assert codes(diagnose({"loss": loss, "val_loss": gaps})) == ["healthy"]


def test_overfitting_at_and_around_threshold():
    loss = [1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07]
    base = [1.0, 0.7, 0.55, 0.5, 0.5, 0.5, 0.5, 0.5]
    rise = 2 * T.OVERFIT_RISE  # twice the threshold: flagged
    rising = base[:4] + list(0.5 * (1 + rise * np.linspace(0.25, 1, 4)))
    found = rules.check_overfitting(loss, rising)
    assert codes(found) == ["overfitting"]
    assert found[0].epoch == 4 and found[0].evidence["best_epoch"] == 4
    small = base[:4] + list(0.5 * (1 + 0.8 * T.OVERFIT_RISE
                                   * np.linspace(0.25, 1, 4)))
    assert rules.check_overfitting(loss, small) == []
    assert rules.check_overfitting(loss[:5], base[:4] + [0.9]) == []
    assert rules.check_overfitting(loss, base) == []
    restored = {"restored": True}
    assert rules.check_overfitting(loss, rising, early_stopping=restored) == []


def test_overfitting_ignores_a_single_noisy_spike():
    loss = np.linspace(1.0, 0.1, 12)
    val = np.linspace(1.1, 0.4, 12)
    val[7] = 0.7
    assert rules.check_overfitting(loss, val) == []


def _batches(levels, noise, seed=0, per_epoch=40):
    rng = np.random.default_rng(seed)
    return [
        list(level * (1 + rng.normal(0, noise, per_epoch)))
        for level in levels
    ]


def test_slow_steady_decline_is_lr_too_low_not_underfitting():
    # The user's report: a few tenths of a percent per epoch, 20 epochs.
    levels = 2.3 * 0.997 ** np.arange(20)
    batches = _batches(levels, 0.02)
    found = rules.check_progress(
        levels, batches, reference=2.3, reference_kind="constant predictor"
    )
    assert codes(found) == ["lr_too_low"]
    assert found[0].evidence["trend_z"] <= -T.TREND_Z
    assert "LRFinder" in found[0].advice


def test_flat_within_noise_is_underfitting():
    levels = np.full(20, 1.6)
    batches = _batches(levels, 0.05, seed=1)
    found = rules.check_progress(
        levels, batches, reference=2.3, reference_kind="constant predictor"
    )
    assert codes(found) == ["underfitting"]
    assert abs(found[0].evidence["trend_z"]) < T.TREND_Z


def test_progress_near_a_fit_is_silent_and_update_ratio_decides():
    fit = 0.9 * T.FAR_FROM_FIT * 2.3
    assert rules.check_progress(
        np.full(10, fit), reference=2.3, reference_kind="constant predictor"
    ) == []
    flat = np.full(3, 2.2)  # 3 epochs: too short for a trend
    kw = {"reference": 2.3, "reference_kind": "constant predictor"}
    assert rules.check_progress(flat, **kw) == []
    frozen = rules.check_progress(
        flat, update_ratio=T.UPDATE_RATIO_LOW / 10, **kw
    )
    assert codes(frozen) == ["lr_too_low"]
    wild = rules.check_progress(
        np.full(12, 2.2), update_ratio=T.UPDATE_RATIO_HIGH * 3, **kw
    )
    assert codes(wild) == ["lr_too_high"]


def test_vanishing_gradients_only_when_they_cost_a_fit():
    # first layer's gradients 1e-4 of the last's, in every probe
    g = [[1e-4, 1e-2, 1.0]] * 6
    names = ["first", "mid", "last"]
    assert codes(rules.check_gradients(g, names)) == ["vanishing_gradients"]
    stuck = rules.check_gradients(g, names, fit_ratio=0.9)
    assert codes(stuck) == ["vanishing_gradients"]
    assert stuck[0].evidence["fit_ratio"] == 0.9
    # a net that fits (loss 1% of the constant predictor's) is not hurt
    assert rules.check_gradients(g, names, fit_ratio=0.01) == []


def test_frozen_weights_above_the_start_are_a_wrecked_net_not_a_low_rate():
    # SGD(10): the loss jumps from 2.76 to 11 and the dead net stops moving
    kw = {"reference": 2.3, "reference_kind": "constant predictor",
          "update_ratio": 0.0}
    wrecked = rules.check_progress(np.full(8, 11.7), start_loss=2.76, **kw)
    assert codes(wrecked) == ["lr_too_high"]
    assert "4.2 x its start" in wrecked[0].evidence["reason"]
    # frozen at about its start: the rate is too low (as without start)
    stuck = rules.check_progress(np.full(8, 2.7), start_loss=2.76, **kw)
    assert codes(stuck) == ["lr_too_low"]


def test_first_epoch_climb_with_several_batches_per_value():
    # steps_per_execution=4: the first value (6.0) already averages the
    # climb; the start is the probe's data loss plus the penalty at init.
    climb = [[6.0, 8.0, 8.5, 8.5, 8.4, 8.5, 8.5, 8.5]]
    assert rules.check_lr_too_high([9.0], climb, initial_loss=2.3) == []
    found = rules.check_lr_too_high([9.0], climb, initial_loss=2.3,
                                    batches_per_loss=4, initial_penalty=0.0)
    assert codes(found) == ["lr_too_high"]
    assert found[0].evidence["initial_loss"] == 2.3
    # a heavy penalty counted in: 2.3 + 4.0 against a settled 6.2 is calm
    calm = [[6.5, 6.4, 6.3, 6.3, 6.2, 6.2, 6.2, 6.2]]
    assert rules.check_lr_too_high([6.3], calm, initial_loss=2.3,
                                   batches_per_loss=4,
                                   initial_penalty=4.0) == []


def test_lr_too_high_rising_loss_and_first_epoch():
    found = rules.check_lr_too_high([2.0, 1.0, 0.9, 1.3, 2.0])
    assert codes(found) == ["lr_too_high"] and found[0].epoch == 4
    assert rules.check_lr_too_high([2.0, 1.0, 0.9, 1.3, 1.2]) == []
    batches = [[2.3, 3.0, 4.0, 5.0, 6.0, 6.0, 6.0, 6.0]]
    found = rules.check_lr_too_high([5.0], batches, initial_loss=2.3)
    assert codes(found) == ["lr_too_high"] and found[0].epoch == 0
    calm = [[2.3, 2.0, 1.8, 1.5, 1.2, 1.0, 0.9, 0.8]]
    assert rules.check_lr_too_high([1.4], calm, initial_loss=2.3) == []


def test_first_epoch_climb_compares_like_with_like():
    # Heavy L2: Keras' batch loss carries the penalty from the first batch
    # on; the recorded initial loss is the data loss alone (2.5). The loss
    # does not climb: it starts at 34 and falls.
    penalty = [[34.0, 33.9, 33.8, 33.8, 33.7, 33.7, 33.6, 33.6]]
    assert rules.check_lr_too_high([33.7], penalty, initial_loss=2.5) == []
    climb = [[2.5, 4.0, 6.0, 8.0, 9.0, 9.0, 9.0, 9.0]]
    found = rules.check_lr_too_high([8.0], climb, initial_loss=2.5)
    assert codes(found) == ["lr_too_high"]


def test_a_late_rise_near_a_fit_is_not_lr_too_high():
    # A deep regression at 3% of the reference ends on a bump to 5%: a
    # large relative rise that costs nothing.
    near = [1.0, 0.4, 0.1, 0.05, 0.04, 0.03, 0.03, 0.05]
    assert rules.check_lr_too_high(near, reference=1.0) == []
    assert codes(rules.check_lr_too_high(near)) == ["lr_too_high"]
    high = [x * 10 for x in near]  # the same shape far from a fit
    assert codes(rules.check_lr_too_high(high, reference=1.0)) == [
        "lr_too_high"
    ]


def test_a_model_that_fits_in_inference_mode_is_not_underfitting():
    # Dropout keeps the training loss at 0.54 of the reference (log 2)
    # while the validation loss, in inference mode, is at 0.36 of it.
    levels = np.full(20, 0.373)
    batches = _batches(levels, 0.05, seed=2)
    kw = {"reference": float(np.log(2)), "reference_kind":
          "constant predictor"}
    assert rules.check_progress(
        levels, batches, val_loss=np.full(20, 0.251), **kw
    ) == []
    biased = rules.check_progress(
        levels, batches, val_loss=np.full(20, 0.40), **kw
    )
    assert codes(biased) == ["underfitting"]


def test_exploding_gradients_with_still_weights_are_not_the_learning_rate():
    # A too-large initialization: the gradients explode and the loss rises,
    # but the weights move 4e-4 of their size per step (CS231n's healthy
    # ~1e-3): the learning rate does not explain it.
    loss = [300.0, 250.0, 200.0, 202.0, 390.0, 400.0]
    def record(update):
        rec = RunRecord.from_history({"loss": loss})
        rec.layers = ["d", "out"]
        rec.probes = [
            {"grad_rms": [1e3, 1e4], "weight_rms": [0.1, 1.0], "epoch": i,
             "step": 10 * i, "update_ratio": {"d": update, "out": update}}
            for i in range(4)
        ]
        return analyze(rec)
    still = record(4e-4)
    assert still.root_cause.code == "exploding_gradients"
    assert any("lr_too_high" in s
               for s in still.root_cause.evidence.get("also_seen", ()))
    moving = record(5e-2)
    assert moving.root_cause.code == "lr_too_high"


def test_lr_too_high_oscillation_only_above_the_noise_floor():
    osc = [1.0, 0.8, 0.9, 0.7, 0.85, 0.65, 0.8, 0.6]
    found = rules.check_lr_too_high(osc)
    assert codes(found) == ["lr_too_high"]
    assert found[0].evidence["fraction_rising"] == pytest.approx(3 / 7)
    small = [1.0, 0.8, 0.81, 0.7, 0.705, 0.65, 0.655, 0.6]
    assert rules.check_lr_too_high(small) == []
    # The same wiggle near zero loss (a converged run) harms nothing.
    tiny = [x * 1e-3 for x in osc]
    assert rules.check_lr_too_high(tiny, reference=2.3) == []


def test_noisy_loss_threshold():
    rng = np.random.default_rng(0)

    def epochs(cv):
        trend = np.linspace(1.0, 0.8, 200)
        k = 1 / cv**2
        return [list(trend * rng.gamma(k, 1 / k, 200)) for _ in range(4)]

    above, below = 1.3 * T.NOISE_CV, 0.8 * T.NOISE_CV
    found = rules.check_noisy_loss(epochs(above))
    assert codes(found) == ["noisy_loss"]
    assert found[0].evidence["noise"] == pytest.approx(above, rel=0.2)
    assert rules.check_noisy_loss(epochs(below)) == []
    assert rules.check_noisy_loss([[1.0] * 3]) == []
    # Near-zero losses (below NOISE_MIN_LEVEL of the reference) are skipped.
    low = [[x * 1e-3 for x in e] for e in epochs(above)]
    assert rules.check_noisy_loss(low, reference=2.3) == []


# ---------------------------------------------------------------- probes


def test_gradient_rules_thresholds():
    names = ["d0", "d1", "d2"]
    vanish = [[1e-6, 1e-4, 1e-2]] * 4
    found = rules.check_gradients(vanish, names)
    assert codes(found) == ["vanishing_gradients"]
    assert found[0].evidence["ratio"] == pytest.approx(1e-4)
    assert rules.check_gradients([[2e-5, 1e-4, 1e-2]] * 4, names) == []
    explode = [[5.0, 0.5, 0.01]] * 4
    assert codes(rules.check_gradients(explode, names)) == [
        "exploding_gradients"
    ]
    assert rules.check_gradients([[0.5, 0.5, 0.01]] * 4, names) == []
    relative = rules.check_gradients(
        [[10.0, 10.0, 10.0]] * 3, names, weight_rms=[[0.05, 1.0, 1.0]] * 3
    )
    assert relative[0].evidence["layer"] == "d0"
    growth = [[1e-3, 1e-3, 1e-3], [1e-1] * 3, [10.0] * 3]
    assert rules.check_gradients(growth, names)[0].evidence["kind"] == (
        "growth"
    )
    recovering = [[1e-6, 1e-2, 1e-2]] * 2 + [[1e-3, 1e-2, 1e-2]] * 4
    assert rules.check_gradients(recovering, names) == []


def test_dead_units_need_70_percent_and_a_cost():
    dead = [{"d": 0.9}, {"d": 0.8}, {"d": 0.75}, {"d": 0.72}]
    found = rules.check_dead_units(dead, {"d": 100}, fit_ratio=0.9)
    assert codes(found) == ["dead_units"]
    assert found[0].evidence["units"] == 100
    # Half the units silent in a net that fits well: not a problem.
    assert rules.check_dead_units([{"d": 0.5}] * 4, fit_ratio=0.9) == []
    assert rules.check_dead_units(
        dead, fit_ratio=0.5 * T.DEAD_COST
    ) == []
    assert rules.check_dead_units([{"d": 0.9}, {"d": 0.9}, {"d": 0.4}]) == []
    sat = rules.check_saturated_units([{"t": 0.6}] * 3, {"t": "tanh"})
    assert codes(sat) == ["saturated_units"]
    assert rules.check_saturated_units([{"t": 0.49}] * 3) == []


def test_units_that_die_during_training_point_to_the_learning_rate():
    alive_then_dead = [{"d": 0.05}, {"d": 0.6}, {"d": 0.9}, {"d": 0.92}]
    found = rules.check_dead_units(alive_then_dead, {"d": 64},
                                   fit_ratio=0.05, initial_probe=True)
    assert codes(found) == ["lr_too_high"]
    assert found[0].evidence["kind"] == "dying_relu"
    assert found[0].evidence["fraction_at_init"] == 0.05
    # Dead from the start (e.g. a negative bias): the units' problem.
    dead_from_init = [{"d": 0.95}] * 4
    found = rules.check_dead_units(dead_from_init, {"d": 64},
                                   fit_ratio=0.9, initial_probe=True)
    assert codes(found) == ["dead_units"]
    # Without a probe before training nothing is known about the init.
    assert codes(rules.check_dead_units(alive_then_dead, fit_ratio=0.9)) == [
        "dead_units"
    ]


# --------------------------------------------------------------- analysis


def test_root_cause_absorbs_its_consequences():
    flat = [2.31, 2.30, 2.30, 2.30, 2.30]
    record = RunRecord.from_history({"loss": flat, "val_loss": flat}, 2.30)
    record.units = {"d": 8}
    record.layers = ["d", "out"]
    record.probes = [
        {"dead": {"d": 1.0}, "grad_rms": [0.0, 1.0], "epoch": i}
        for i in range(3)
    ]
    found = analyze(record)
    assert codes(found) == ["dead_units"]
    assert any("underfitting" in s for s in found[0].evidence["also_seen"])


def test_units_killed_by_the_rate_explain_still_weights():
    # SGD at a learning rate of 3 kills every ReLU unit in the first
    # epoch: the loss then stays at the constant predictor's and the
    # weights stop moving (update/weight 0). That is the too-high rate's
    # doing, not a too-low rate: one finding, not two contradicting ones.
    flat = [3.2, 2.34, 2.34, 2.34, 2.34, 2.34]
    record = RunRecord.from_history({"loss": flat, "val_loss": flat}, 2.30)
    record.units = {"d": 64}
    record.layers = ["d", "out"]
    record.probes = [
        {"dead": {"d": 0.16 if i == 0 else 1.0}, "grad_rms": [1e-2, 1e-2],
         "weight_rms": [0.1, 0.1], "epoch": i, "step": 10 * i,
         "update_ratio": {"d": 0.0, "out": 0.0}}
        for i in range(4)
    ]
    found = analyze(record)
    assert codes(found) == ["lr_too_high"]
    assert found[0].evidence["kind"] == "dying_relu"
    assert any(s.startswith("lr_too_low")
               for s in found[0].evidence["also_seen"])


def test_report_lists_not_checked_without_validation():
    loss, _ = healthy_curve()
    found = diagnose({"loss": loss})
    assert codes(found) == ["healthy"]
    assert "overfitting (no val_loss logged" in found.report()
    assert any("overfitting" in n for n in found[0].evidence["not_checked"])


def test_analyze_is_pure_and_record_round_trips_json():
    loss, val = healthy_curve()
    record = RunRecord.from_history({"loss": list(loss) + [float("nan")],
                                     "val_loss": list(val) + [1.0]})
    before = json.dumps(record.to_dict())
    first = analyze(record)
    again = analyze(RunRecord.from_dict(json.loads(before)))
    assert json.dumps(record.to_dict()) == before
    assert [f.to_dict() for f in first] == [f.to_dict() for f in again]
    assert codes(first) == ["diverged"]
