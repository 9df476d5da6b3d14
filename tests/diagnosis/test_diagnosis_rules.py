"""Unit tests of each diagnosis rule on synthetic curves, at and around
its thresholds."""

import json
import math

import numpy as np
import pytest

from keras_training_kit.diagnosis import (
    CODES,
    Finding,
    analyze,
    diagnose,
    rules,
)


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


def test_finding_fields_str_and_json():
    f = Finding("overfitting", "warning", 12, {
        "best_epoch": 11, "val_loss_best": 0.31, "val_loss_last": 0.58,
        "loss_best": 0.2, "loss_last": 0.02, "x": np.float32(1.5),
    })
    text = str(f)
    assert text.startswith("[warning] overfitting from epoch 12")
    assert "val_loss 0.31 -> 0.58 while loss 0.2 -> 0.02" in text
    assert "dropout" in f.advice and "early stopping" in f.advice
    data = json.loads(json.dumps(f.to_dict()))
    assert data["evidence"]["x"] == 1.5 and data["epoch"] == 12


def test_finding_rejects_bad_code_and_severity():
    with pytest.raises(ValueError, match="`code`"):
        Finding("sad", "warning")
    with pytest.raises(ValueError, match="`severity`"):
        Finding("diverged", "fatal")


def test_every_code_has_advice_and_renders_with_missing_evidence():
    for code in CODES:
        f = Finding(code, "info" if code == "healthy" else "warning")
        assert f.advice and code in str(f)


# ------------------------------------------------ batch-loss recovery


def test_recover_batch_losses_matches_running_mean_reference():
    rng = np.random.default_rng(1)
    losses = rng.uniform(0.1, 3.0, 50)
    running = np.cumsum(losses) / np.arange(1, 51)  # Keras 3's batch logs
    np.testing.assert_allclose(
        rules.recover_batch_losses(running), losses, rtol=1e-10
    )
    # steps_per_execution=5: logs every 5 steps, mean of each block back.
    steps = np.arange(5, 51, 5)
    got = rules.recover_batch_losses(running[steps - 1], steps)
    np.testing.assert_allclose(got, losses.reshape(10, 5).mean(1), rtol=1e-10)


def test_recover_batch_losses_float32_precision():
    losses = np.random.default_rng(2).uniform(0.01, 0.1, 500)
    running = (np.cumsum(losses) / np.arange(1, 501)).astype("float32")
    got = rules.recover_batch_losses(running)
    assert np.abs(got - losses).max() < 2e-3


# ----------------------------------------------------- constant predictor


def test_constant_predictor_loss_matches_numpy_references():
    y = np.array([0, 0, 1, 2, 2, 2])
    p = np.array([2, 1, 3]) / 6
    ref = -(p * np.log(p)).sum()
    assert rules.constant_predictor_loss(
        y, "sparse_categorical_crossentropy"
    ) == pytest.approx(ref)
    onehot = np.eye(3)[y]
    assert rules.constant_predictor_loss(
        onehot, "categorical_crossentropy"
    ) == pytest.approx(ref)
    yb = np.array([1.0, 0, 0, 0])
    assert rules.constant_predictor_loss(yb, "binary_crossentropy") == (
        pytest.approx(-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    )
    yr = np.array([1.0, 2.0, 4.0, 9.0])
    assert rules.constant_predictor_loss(yr, "mse") == pytest.approx(yr.var())
    assert rules.constant_predictor_loss(yr, "mae") == pytest.approx(
        np.abs(yr - np.median(yr)).mean()
    )
    assert rules.constant_predictor_loss(yr, "hinge") is None


def test_constant_predictor_equals_keras_loss_of_the_prior():
    import keras

    y = np.array([0, 1, 1, 2, 2, 2, 2, 3])
    prior = np.bincount(y) / y.size
    keras_value = float(
        keras.losses.SparseCategoricalCrossentropy()(
            y, np.tile(prior, (y.size, 1))
        )
    )
    for loss in (
        "sparse_categorical_crossentropy",
        keras.losses.SparseCategoricalCrossentropy(),
        keras.losses.sparse_categorical_crossentropy,
    ):
        assert rules.constant_predictor_loss(y, loss) == pytest.approx(
            keras_value, rel=1e-5
        )


def test_chance_loss():
    assert rules.chance_loss("sparse_categorical_crossentropy", 10) == (
        pytest.approx(-math.log(1 / 10))
    )
    assert rules.chance_loss("binary_crossentropy", 1) == pytest.approx(
        math.log(2)
    )
    assert rules.chance_loss("mse", 1) is None


# --------------------------------------------------------------- rules


def test_healthy_curve_is_healthy_with_and_without_baseline():
    loss, val = healthy_curve()
    for baseline in (None, 2.3):
        found = diagnose({"loss": loss, "val_loss": val}, baseline)
        assert codes(found) == ["healthy"]
        assert found[0].severity == "info"


@pytest.mark.parametrize("seed", range(5))
def test_healthy_noisy_curves_stay_silent(seed):
    # Healthy runs with noisy validation: no one-shot false alarm.
    rng = np.random.default_rng(seed)
    t = np.arange(30)
    loss = 2.0 * np.exp(-t / 4) + 0.1 + rng.normal(0, 0.01, 30)
    val = 2.0 * np.exp(-t / 4) + 0.2 + rng.normal(0, 0.02, 30)
    assert codes(diagnose({"loss": loss, "val_loss": val}, 2.3)) == [
        "healthy"
    ]


def test_diverged_first_nan_epoch():
    found = rules.check_diverged([1.0, 0.8, float("nan"), float("nan")])
    assert codes(found) == ["diverged"]
    assert found[0].epoch == 2 and found[0].severity == "error"
    assert found[0].evidence["last_finite_loss"] == 0.8
    assert rules.check_diverged([1.0, 1e30, 1e38]) == []  # finite: not NaN
    found = rules.check_diverged([1.0], batch_losses=[[1.0, float("inf")]])
    assert found[0].evidence["where"] == "loss of batch 1"


def test_diverged_suppresses_curve_rules_after_the_nan():
    found = diagnose({"loss": [2.0, 1.0, 0.5, float("nan"), float("nan")]})
    assert codes(found) == ["diverged"]


def test_overfitting_at_and_around_threshold():
    loss = [1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07]
    base = [1.0, 0.7, 0.55, 0.5, 0.5, 0.5, 0.5, 0.5]
    # Rise of 20% of the best: overfitting from the epoch after the best.
    rising = base[:4] + [0.52, 0.55, 0.58, 0.60]
    found = rules.check_overfitting(loss, rising)
    assert codes(found) == ["overfitting"]
    assert found[0].epoch == 4 and found[0].evidence["best_epoch"] == 3
    # Rise of 8% (below OVERFIT_RISE=10%): silent.
    small = base[:4] + [0.51, 0.52, 0.53, 0.54]
    assert rules.check_overfitting(loss, small) == []
    # Only one epoch after the best: too early to tell.
    assert rules.check_overfitting(loss[:5], base[:4] + [0.9]) == []
    # Validation flat while training falls: not (yet) overfitting.
    assert rules.check_overfitting(loss, base) == []


def test_overfitting_ignores_a_single_noisy_spike():
    loss = np.linspace(1.0, 0.1, 12)
    val = np.linspace(1.1, 0.4, 12)
    val[7] = 0.7  # one noisy epoch, then back on trend
    assert rules.check_overfitting(loss, val) == []


def test_underfitting_with_baseline_threshold():
    flat = [1.5, 1.3, 1.25, 1.24, 1.24, 1.24]
    found = rules.check_underfitting(flat, flat, baseline_loss=2.3)
    assert codes(found) == ["underfitting"]
    assert found[0].evidence["ratio"] == pytest.approx(1.24 / 2.3)
    # 0.49 of the baseline: below UNDERFIT_RATIO, a fit.
    low = [v * 1.12 / 1.24 for v in flat]
    assert rules.check_underfitting(low, low, baseline_loss=2.3) == []
    # Still falling (not a plateau): not underfitting.
    falling = [1.5, 1.45, 1.4, 1.35, 1.3, 1.25]
    assert rules.check_underfitting(falling, baseline_loss=2.3) == []


def test_underfitting_without_baseline_uses_curve_shape():
    barely = [2.3, 2.2, 2.15, 2.14, 2.14, 2.14]
    found = diagnose({"loss": barely, "val_loss": barely})
    assert codes(found) == ["underfitting"]
    assert found[0].evidence["reference_kind"] == "first epoch"
    # Dropped to 60% of the first epoch then flat: not flagged by shape.
    dropped = [2.3, 1.6, 1.4, 1.38, 1.38, 1.38]
    assert rules.check_underfitting(dropped) == []


def test_lr_too_low_steady_slow_decrease():
    slow = 2.3 * 0.97 ** np.arange(10)  # 3% per epoch, far from a fit
    found = rules.check_lr_too_low(slow, baseline_loss=2.3)
    assert codes(found) == ["lr_too_low"]
    assert found[0].evidence["mean_relative_drop"] == pytest.approx(0.03)
    assert "LRFinder" in found[0].advice
    # 12% per epoch: above LR_LOW_MAX_DROP, a normal decrease.
    assert rules.check_lr_too_low(2.3 * 0.88 ** np.arange(10), 2.3) == []
    # Far below the baseline: not too slow.
    assert rules.check_lr_too_low(slow * 0.4, baseline_loss=2.3) == []


def test_lr_too_high_rising_loss():
    found = rules.check_lr_too_high([2.0, 1.0, 0.9, 1.3, 2.0])
    assert codes(found) == ["lr_too_high"]
    assert found[0].epoch == 4  # 2.0 >= 1.5 x 0.9
    assert rules.check_lr_too_high([2.0, 1.0, 0.9, 1.3, 1.2]) == []


def test_lr_too_high_batch_loss_climbs_in_first_epoch():
    batches = [[2.3, 3.0, 4.0, 5.0, 6.0, 6.0, 6.0, 6.0]]
    found = rules.check_lr_too_high([5.0], batches, initial_loss=2.3)
    assert codes(found) == ["lr_too_high"] and found[0].epoch == 0
    calm = [[2.3, 2.0, 1.8, 1.5, 1.2, 1.0, 0.9, 0.8]]
    assert rules.check_lr_too_high([1.4], calm, initial_loss=2.3) == []


def test_lr_too_high_oscillation():
    osc = [1.0, 0.8, 0.9, 0.7, 0.85, 0.65, 0.8, 0.6]
    found = rules.check_lr_too_high(osc)
    assert codes(found) == ["lr_too_high"]
    assert found[0].evidence["fraction_rising"] == pytest.approx(3 / 7)
    small = [1.0, 0.8, 0.81, 0.7, 0.705, 0.65, 0.655, 0.6]  # rises ~1%
    assert rules.check_lr_too_high(small) == []


def test_noisy_loss_threshold():
    rng = np.random.default_rng(0)

    def epochs(cv):
        # Gamma noise of mean 1 and std cv: positive, skewed like losses.
        trend = np.linspace(1.0, 0.8, 200)
        k = 1 / cv**2
        return [list(trend * rng.gamma(k, 1 / k, 200)) for _ in range(4)]

    found = rules.check_noisy_loss(epochs(1.3))
    assert codes(found) == ["noisy_loss"]
    assert found[0].evidence["noise"] == pytest.approx(1.3, rel=0.2)
    assert rules.check_noisy_loss(epochs(0.8)) == []
    assert rules.check_noisy_loss([[1.0] * 3]) == []  # too few batches


def test_gradient_rules_thresholds():
    names = ["d0", "d1", "d2"]
    vanish = [[1e-6, 1e-4, 1e-2]] * 4
    found = rules.check_gradients(vanish, names)
    assert codes(found) == ["vanishing_gradients"]
    assert found[0].evidence["ratio"] == pytest.approx(1e-4)
    assert rules.check_gradients([[2e-5, 1e-4, 1e-2]] * 4, names) == []
    explode = [[5.0, 0.5, 0.01]] * 4  # ratio 500 > 100
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
    nan = rules.check_gradients([[1.0, 1.0, 1.0], [np.nan, 1, 1]], names)
    assert nan[0].severity == "error"
    # Only the later half counts: vanishing at init that recovers is fine.
    recovering = [[1e-6, 1e-2, 1e-2]] * 2 + [[1e-3, 1e-2, 1e-2]] * 4
    assert rules.check_gradients(recovering, names) == []


def test_dead_and_saturated_units_must_persist():
    dead = [{"d": 0.9}, {"d": 0.8}, {"d": 0.75}, {"d": 0.7}]
    found = rules.check_dead_units(dead, {"d": 100})
    assert codes(found) == ["dead_units"]
    assert found[0].evidence["units"] == 100
    assert rules.check_dead_units([{"d": 0.9}, {"d": 0.9}, {"d": 0.4}]) == []
    assert rules.check_dead_units([{"d": 0.45}] * 4) == []
    sat = rules.check_saturated_units([{"t": 0.6}] * 3, {"t": "tanh"})
    assert codes(sat) == ["saturated_units"]
    assert rules.check_saturated_units([{"t": 0.49}] * 3) == []


def test_unscaled_inputs_thresholds():
    mean = np.zeros(5)
    std = np.ones(5)
    assert rules.check_unscaled_inputs(mean, std) == []
    spread = std.copy()
    spread[0] = 150.0
    found = rules.check_unscaled_inputs(mean, spread)
    assert codes(found) == ["unscaled_inputs"]
    assert found[0].evidence["spread"] == pytest.approx(150.0)
    spread[0] = 90.0
    assert rules.check_unscaled_inputs(mean, spread) == []
    off = mean.copy()
    off[2] = 12.0
    assert codes(rules.check_unscaled_inputs(off, std)) == ["unscaled_inputs"]
    stats = rules.input_statistics(np.array([[1.0, 10.0], [3.0, 30.0]]))
    np.testing.assert_allclose(stats["mean"], [2.0, 20.0])
    np.testing.assert_allclose(stats["std"], [1.0, 10.0])
    assert rules.input_statistics(np.array([[1, 2], [3, 4]])) is None


def test_initial_loss_against_chance():
    chance = -math.log(1 / 10)
    found = rules.check_initial_loss(5.0, chance)
    assert codes(found) == ["high_initial_loss"]
    assert found[0].evidence["ratio"] == pytest.approx(5.0 / chance)
    assert rules.check_initial_loss(2.5, chance) == []


def test_root_cause_absorbs_its_consequences():
    flat = [2.31, 2.30, 2.30, 2.30]
    found = analyze(
        {"loss": flat, "val_loss": flat},
        2.30,
        activations={"dead": [{"d": 1.0}] * 3, "units": {"d": 8}},
        gradients={"rms": [[0.0, 1.0]] * 3, "layers": ["d", "out"]},
    )
    assert codes(found) == ["dead_units"]
    assert "underfitting" in found[0].evidence["also_seen"][0]


def test_report_lists_not_checked_without_validation():
    loss, _ = healthy_curve()
    found = diagnose({"loss": loss})
    assert codes(found) == ["healthy"]
    assert "overfitting (no validation data" in found.report()
    assert any("overfitting" in n for n in found[0].evidence["not_checked"])
