"""The data and output-layer rules: reference losses, input and target
scales, the loss against the output layer (before any training)."""

import math

import numpy as np
import pytest

from keras_training_kit.diagnosis import rules
from keras_training_kit.diagnosis.rules import thresholds as T


def codes(findings):
    return [f.code for f in findings]


def test_constant_predictor_losses_against_numpy():
    y = np.array([0, 1, 1, 2, 2, 2])
    p = np.bincount(y) / y.size
    assert rules.constant_predictor_loss(
        y, "sparse_categorical_crossentropy"
    ) == pytest.approx(-(p * np.log(p)).sum())
    onehot = np.eye(3)[y]
    assert rules.constant_predictor_loss(
        onehot, "categorical_crossentropy"
    ) == pytest.approx(-(p * np.log(p)).sum())
    yb = np.array([0.0, 1.0, 1.0, 1.0])
    assert rules.constant_predictor_loss(yb, "binary_crossentropy") == (
        pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    )
    yr = np.random.default_rng(0).normal(3, 2, 100)
    assert rules.constant_predictor_loss(yr, "mse") == pytest.approx(yr.var())
    assert rules.constant_predictor_loss(yr, "mae") == pytest.approx(
        np.abs(yr - np.median(yr)).mean()
    )
    assert rules.constant_predictor_loss(yr, "hinge") is None
    # Labels a cross-entropy cannot take give no baseline (the head rule
    # reports them).
    assert rules.constant_predictor_loss(
        np.array([-1, 2]), "sparse_categorical_crossentropy"
    ) is None


def test_loss_names_and_from_logits():
    import keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert rules.loss_name(loss) == "sparse_categorical_crossentropy"
    assert rules.from_logits(loss) is True
    assert rules.from_logits("binary_crossentropy") is False
    assert rules.loss_name("mse") == "mean_squared_error"
    assert rules.loss_name({"a": "mse"}) is None
    assert rules.chance_loss("sparse_categorical_crossentropy", 10) == (
        pytest.approx(math.log(10))
    )
    assert rules.chance_loss("mse", 1) is None


def test_unit_interval_pixels_and_standardized_inputs_are_silent():
    rng = np.random.default_rng(0)
    pixels = (rng.random((500, 64)) ** 4).astype("float32")  # many near 0
    pixels[:, :8] = 0.0  # constant border pixels
    s = rules.input_statistics(pixels)
    assert rules.check_unscaled_inputs(s["mean"], s["std"]) == []
    z = rng.normal(size=(500, 10))
    s = rules.input_statistics(z)
    assert rules.check_unscaled_inputs(s["mean"], s["std"]) == []


def test_large_scales_and_far_means_are_unscaled():
    rng = np.random.default_rng(0)
    raw = rng.random((500, 5)) * 2 * T.INPUT_RMS_HIGH
    s = rules.input_statistics(raw)
    found = rules.check_unscaled_inputs(s["mean"], s["std"])
    assert codes(found) == ["unscaled_inputs"]
    assert found[0].evidence["max_rms"] >= T.INPUT_RMS_HIGH
    offset = rng.normal(size=(500, 5)) * 0.1
    offset[:, 2] += 3.0  # mean 3, std 0.1: 30 stds off zero
    s = rules.input_statistics(offset)
    found = rules.check_unscaled_inputs(s["mean"], s["std"])
    assert "far_mean" in found[0].evidence


def test_input_statistics_count_nonfinite_rows():
    x = np.ones((6, 3))
    x[2, 1] = np.nan
    x[4] = np.inf
    s = rules.input_statistics(x)
    assert s["nonfinite"] == 4 and s["rows_nonfinite"] == 2
    np.testing.assert_allclose(s["mean"], [1.0, 1.0, 1.0])
    assert rules.input_statistics(np.array([[1, 2], [3, 4]])) is None


def test_unscaled_targets_only_for_regression_losses():
    big = rules.target_statistics(np.linspace(0, 1e8, 50))
    found = rules.check_unscaled_targets(big, "mean_squared_error")
    assert codes(found) == ["unscaled_targets"]
    assert found[0].remedies[0].name == "standardize_targets"
    assert rules.check_unscaled_targets(big, "binary_crossentropy") == []
    ok = rules.target_statistics(np.linspace(-3, 30, 50))
    assert rules.check_unscaled_targets(ok, "mean_squared_error") == []


def test_initial_loss_against_chance():
    chance = math.log(10)
    ratio = T.INITIAL_LOSS_RATIO
    found = rules.check_initial_loss(1.2 * ratio * chance, chance)
    assert codes(found) == ["high_initial_loss"]
    assert found[0].evidence["ratio"] == pytest.approx(1.2 * ratio)
    assert rules.check_initial_loss(0.9 * ratio * chance, chance) == []


def test_regression_chance_is_the_loss_of_a_zero_output():
    y = np.random.default_rng(0).normal(3.0, 2.0, (200, 1))
    stats = rules.target_statistics(y)
    # Zero-mean unit-variance initial outputs o: E[(y - o)^2] = E[y^2] + 1,
    # E|y - o| <= E|y| + E|o|; checked by sampling o.
    o = np.random.default_rng(3).normal(0, 1, (200, 4000))
    assert rules.chance_loss("mse", 1, stats) == pytest.approx(
        float(np.mean((y - o) ** 2)), rel=0.01
    )
    mae = rules.chance_loss("mae", 1, stats)
    assert float(np.mean(np.abs(y - o))) <= mae
    assert mae == pytest.approx(float(np.mean(np.abs(y))) + np.sqrt(2 / np.pi))
    assert rules.chance_loss("mse", 1) is None  # no targets: no level
    assert rules.chance_loss("huber", 1, stats) is None
    assert rules.chance_loss("sparse_categorical_crossentropy", 10, stats) \
        == pytest.approx(math.log(10))
    # An output bias of 30 on standardized targets: the initial MSE is
    # ~450 x chance; a unit-scale initial output is not flagged.
    z = (y - y.mean()) / y.std()
    chance = rules.chance_loss("mse", 1, rules.target_statistics(z))
    assert codes(rules.check_initial_loss(
        float(np.mean((z - 30.0) ** 2)), chance)) == ["high_initial_loss"]
    out = np.random.default_rng(1).normal(0, 1, z.shape)
    assert rules.check_initial_loss(float(np.mean((z - out) ** 2)),
                                    chance) == []


def head(activation, units):
    return {"layer": "out", "activation": activation, "units": units}


def loss(name, from_logits=False):
    return {"name": rules.loss_name(name), "from_logits": from_logits}


LABELS = rules.target_statistics(np.array([0, 1, 2, 3, 4] * 10))
BINARY = rules.target_statistics(np.array([0.0, 1.0] * 10))
REGRESSION = rules.target_statistics(np.linspace(-5, 20, 40))


@pytest.mark.parametrize(
    "loss_, head_, targets, severity, word",
    [
        (loss("binary_crossentropy"), head("softmax", 1), BINARY,
         "error", "one unit"),
        (loss("sparse_categorical_crossentropy"), head(None, 5), LABELS,
         "error", "expects probabilities"),
        (loss("sparse_categorical_crossentropy"), head("relu", 5), LABELS,
         "error", "expects probabilities"),
        (loss("sparse_categorical_crossentropy", True), head("softmax", 5),
         LABELS, "warning", "applies it again"),
        (loss("sparse_categorical_crossentropy"), head("softmax", 3), LABELS,
         "error", "classes"),
        (loss("binary_crossentropy"), head("sigmoid", 1), LABELS,
         "error", "outside [0, 1]"),
        (loss("categorical_crossentropy"), head("softmax", 5), LABELS,
         "error", "one-hot"),
        (loss("mse"), head("sigmoid", 1), REGRESSION, "error", "[0, 1]"),
        (loss("mse"), head("relu", 1), REGRESSION, "error", "negative"),
        (loss("mse"), head("softmax", 5), LABELS, "error", "class labels"),
        # digits labels 0..9 (int32) regressed through one linear unit
        (loss("mse"), head(None, 1),
         rules.target_statistics(np.arange(200, dtype="int32") % 10),
         "warning", "integer labels 0..9"),
    ],
)
def test_output_layer_mismatches(loss_, head_, targets, severity, word):
    found = rules.check_loss_output(loss_, head_, targets)
    assert codes(found) == ["loss_output_mismatch"]
    assert found[0].severity == severity
    assert word in found[0].evidence["reason"]
    assert found[0].evidence["fix"]


@pytest.mark.parametrize(
    "loss_, head_, targets",
    [
        (loss("sparse_categorical_crossentropy"), head("softmax", 5), LABELS),
        (loss("sparse_categorical_crossentropy", True), head(None, 5),
         LABELS),
        (loss("binary_crossentropy"), head("sigmoid", 1), BINARY),
        (loss("binary_crossentropy", True), head(None, 1), BINARY),
        (loss("mse"), head(None, 1), REGRESSION),
        (loss("mse"), head("sigmoid", 1), BINARY),  # [0, 1] targets
        # Whole-number float targets, ids with a gap, and 0/1 labels are
        # not read as class ids.
        (loss("mse"), head(None, 1),
         rules.target_statistics(np.arange(200, dtype="float32") % 10)),
        (loss("mse"), head(None, 1),
         rules.target_statistics(np.array([0, 1, 2, 4] * 10))),
        (loss("mse"), head(None, 1),
         rules.target_statistics(np.array([0, 1] * 10))),
        (loss("categorical_crossentropy"), head("softmax", 2),
         rules.target_statistics(np.eye(2)[[0, 1, 1, 0]])),
    ],
)
def test_matching_output_layers_are_silent(loss_, head_, targets):
    assert rules.check_loss_output(loss_, head_, targets) == []
