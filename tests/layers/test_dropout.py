"""Dropout in both conventions: masks, statistics, Keras parity."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit.layers import Dropout


def test_inference_is_identity_or_scaled_by_keep_probability():
    x = np.random.default_rng(0).normal(size=(3, 7)).astype("float32")
    np.testing.assert_array_equal(Dropout(0.3)(x, training=False), x)
    np.testing.assert_allclose(
        Dropout(0.3, scale_at="test")(x, training=False), 0.7 * x, rtol=1e-6
    )
    # Default of `training` is inference, as for keras.layers.Dropout.
    np.testing.assert_allclose(
        Dropout(0.3, scale_at="test")(x), 0.7 * x, rtol=1e-6
    )


@pytest.mark.parametrize("scale_at,kept_value", [("train", 4.0), ("test", 3.0)])
def test_training_values_and_drop_fraction(scale_at, kept_value):
    p, n = 0.25, 200_000
    x = np.full((n // 100, 100), 3.0, "float32")
    y = Dropout(p, scale_at=scale_at, seed=3)(x, training=True).numpy()
    assert set(np.unique(y)) == {0.0, kept_value}  # 3 / (1 − 0.25) = 4
    # Binomial: sd of the dropped fraction is sqrt(p(1−p)/n) ≈ 9.7e-4.
    assert abs(np.mean(y == 0.0) - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_fresh_mask_every_call_and_under_jit():
    layer = Dropout(0.5, seed=0)
    x = np.ones((4, 64), "float32")
    first = layer(x, training=True).numpy()
    second = layer(x, training=True).numpy()
    assert not np.array_equal(first, second)
    step = tf.function(lambda t: layer(t, training=True), jit_compile=True)
    a, b = step(x).numpy(), step(x).numpy()
    assert not np.array_equal(a, b)


def test_fresh_masks_across_fit_steps_with_jit():
    """Each training step of a jit-compiled fit draws its own mask."""
    x = np.ones((8, 32), "float32")
    inputs = keras.Input((32,))
    drop = Dropout(0.5, seed=1)
    dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    model = keras.Model(inputs, dense(drop(inputs)))
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(round(float(logs["loss"]), 5))

    # η = 0: the weights stay put, so the loss only reflects the mask.
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=True)
    model.fit(x, np.zeros((8, 1)), batch_size=8, epochs=6, verbose=0,
              callbacks=[Record()])
    assert len(set(seen)) > 1, seen


def test_same_seed_same_masks_and_same_as_keras_in_train_convention():
    x = np.random.default_rng(1).normal(size=(5, 9)).astype("float32")
    a = Dropout(0.4, seed=7)(x, training=True)
    b = Dropout(0.4, seed=7)(x, training=True)
    k = keras.layers.Dropout(0.4, seed=7)(x, training=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, k)


@pytest.mark.parametrize("scale_at", ["train", "test"])
def test_noise_shape_broadcasts_the_mask(scale_at):
    x = np.ones((6, 5, 4), "float32")
    y = Dropout(0.5, scale_at, noise_shape=(None, 1, 4), seed=2)(
        x, training=True
    ).numpy()
    # One mask per (sample, feature), shared along the time axis.
    assert np.all(y == y[:, :1, :])
    assert 0 < np.mean(y == 0) < 1
    if scale_at == "train":
        k = keras.layers.Dropout(0.5, noise_shape=(None, 1, 4), seed=2)
        np.testing.assert_array_equal(y, k(x, training=True))


@pytest.mark.parametrize("scale_at", ["train", "test"])
def test_expected_training_activation_equals_inference_activation(scale_at):
    """Both conventions: E[training output] = inference output.

    K = 4000 masks per unit; the sample mean of x·m/(1−p) (train) or x·m
    (test) has sd x·c·sqrt(p(1−p)/K) with c = 1/(1−p) or 1; we allow 5 sd
    per unit (50 units: a false alarm has probability < 1e-4).
    """
    p, k = 0.3, 4000
    x = np.random.default_rng(2).uniform(0.5, 2.0, size=(1, 50))
    x = x.astype("float32")
    layer = Dropout(p, scale_at=scale_at, seed=5)
    samples = layer(np.repeat(x, k, axis=0), training=True).numpy()
    inference = layer(x, training=False).numpy()[0]
    c = 1 / (1 - p) if scale_at == "train" else 1.0
    sd = x[0] * c * np.sqrt(p * (1 - p) / k)
    assert np.all(np.abs(samples.mean(axis=0) - inference) < 5 * sd)


def test_both_conventions_differ_only_by_the_keep_factor():
    """Test-convention net = train-convention net with activations ×(1−p).

    Same trained weights: at inference the "test" network's hidden layer
    is exactly (1−p) times the "train" network's, and its expected
    training activation is (1−p) times too.
    """
    p = 0.4
    x = np.random.default_rng(3).normal(size=(3, 6)).astype("float32")
    train, test = Dropout(p, "train"), Dropout(p, "test")
    np.testing.assert_allclose(
        test(x, training=False), (1 - p) * train(x, training=False),
        rtol=1e-6,
    )


def test_dropped_units_get_no_gradient():
    x = tf.constant(np.ones((4, 16), "float32"))
    for scale_at, c in (("train", 2.0), ("test", 1.0)):
        layer = Dropout(0.5, scale_at=scale_at, seed=4)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            total = tf.reduce_sum(y)
        g = tape.gradient(total, x).numpy()
        np.testing.assert_allclose(g, (y.numpy() != 0) * c)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    x = np.ones((2, 8), "float32")
    for scale_at, kept in (("train", 2.0), ("test", 1.0)):
        layer = Dropout(0.5, scale_at=scale_at, seed=0)
        y = layer(x, training=True)
        assert keras.backend.standardize_dtype(y.dtype) == policy[6:]
        assert set(np.unique(np.asarray(y, "float32"))) <= {0.0, kept}
        z = layer(x, training=False)
        assert keras.backend.standardize_dtype(z.dtype) == policy[6:]


def test_shape_config_and_save_load(tmp_path):
    layer = Dropout(0.2, scale_at="test", noise_shape=(None, 1), seed=9,
                    name="d")
    assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)
    config = layer.get_config()
    assert {k: config[k] for k in ("rate", "scale_at", "noise_shape", "seed")} \
        == {"rate": 0.2, "scale_at": "test", "noise_shape": (None, 1),
            "seed": 9}
    clone = Dropout.from_config(json.loads(json.dumps(config)))
    assert clone.scale_at == "test" and clone.noise_shape == (None, 1)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(3), layer]
    )
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    assert loaded.layers[-1].scale_at == "test"


def test_bad_arguments_raise_naming_the_argument():
    cases = [
        ({"rate": 1.0}, "rate"),
        ({"rate": -0.1}, "rate"),
        ({"rate": "0.5"}, "rate"),
        ({"rate": 0.5, "scale_at": "both"}, "scale_at"),
        ({"rate": 0.5, "noise_shape": "1"}, "noise_shape"),
        ({"rate": 0.5, "noise_shape": (None, 0)}, "noise_shape"),
        ({"rate": 0.5, "seed": -1}, "seed"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            Dropout(**kwargs)


def test_rate_zero_is_identity_in_training():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    for scale_at in ("train", "test"):
        np.testing.assert_array_equal(
            Dropout(0.0, scale_at)(x, training=True), x
        )
