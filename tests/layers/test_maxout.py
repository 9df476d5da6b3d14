"""Maxout against a NumPy reference; the course's activations."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit.layers import Maxout, leaky_relu
from keras_training_kit.regularizers import L2


def np_maxout(x, kernel, bias, units, pieces):
    """max_k (x W_k + b_k); column j of the kernel is piece j // units."""
    z = x @ kernel + bias
    z = z.reshape(x.shape[:-1] + (pieces, units))
    return z.max(axis=-2)


def test_matches_numpy_reference_rank_2_and_3():
    rng = np.random.default_rng(0)
    layer = Maxout(5, pieces=3, bias_initializer="random_normal")
    x = rng.normal(size=(7, 4)).astype("float32")
    y = layer(x).numpy()
    k, b = layer.kernel.numpy(), layer.bias.numpy()
    assert k.shape == (4, 15) and b.shape == (15,)
    assert len(layer.trainable_weights) == 2
    np.testing.assert_allclose(y, np_maxout(x, k, b, 5, 3), rtol=1e-5,
                               atol=1e-6)
    x3 = rng.normal(size=(2, 6, 4)).astype("float32")
    y3 = layer(x3).numpy()
    assert y3.shape == layer.compute_output_shape((2, 6, 4)) == (2, 6, 5)
    np.testing.assert_allclose(y3, np_maxout(x3, k, b, 5, 3), rtol=1e-5,
                               atol=1e-6)


def test_gradient_flows_only_through_the_winning_piece():
    layer = Maxout(2, pieces=3, use_bias=False)
    x = tf.constant(np.random.default_rng(1).normal(size=(1, 3)), "float32")
    layer.build(x.shape)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(x))
    g = tape.gradient(total, layer.kernel).numpy()
    z = (x.numpy() @ layer.kernel.numpy()).reshape(3, 2)
    winners = z.argmax(axis=0)  # per unit
    expected = np.zeros((3, 6), "float32")
    for unit, piece in enumerate(winners):
        expected[:, piece * 2 + unit] = x.numpy()[0]
    np.testing.assert_allclose(g, expected, rtol=1e-6)


def test_one_piece_is_dense():
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    maxout = Maxout(3, pieces=1, bias_initializer="ones")
    dense = keras.layers.Dense(3, bias_initializer="ones")
    maxout.build(x.shape)
    dense.build(x.shape)
    dense.kernel.assign(maxout.kernel)
    np.testing.assert_allclose(maxout(x), dense(x), rtol=1e-6)


def test_dense_like_arguments_are_honoured():
    layer = Maxout(
        3,
        pieces=2,
        use_bias=True,
        kernel_initializer="ones",
        bias_initializer=keras.initializers.Constant(0.5),
        kernel_regularizer=L2(0.1),
        bias_regularizer=keras.regularizers.L1(0.2),
        activity_regularizer=keras.regularizers.L2(0.0),
        kernel_constraint=keras.constraints.NonNeg(),
        bias_constraint=keras.constraints.MaxNorm(0.1),
    )
    layer.build((None, 4))
    np.testing.assert_array_equal(layer.kernel.numpy(), np.ones((4, 6)))
    np.testing.assert_array_equal(layer.bias.numpy(), np.full(6, 0.5))
    # (0.1/2)·24 ones + 0.2·6·0.5
    np.testing.assert_allclose(
        float(sum(layer.losses)), 0.05 * 24 + 0.2 * 3.0, rtol=1e-6
    )
    assert isinstance(layer.kernel.constraint, keras.constraints.NonNeg)
    no_bias = Maxout(3, use_bias=False)
    no_bias.build((None, 4))
    assert no_bias.bias is None and len(no_bias.weights) == 1


def test_config_round_trip_and_safe_save_load(tmp_path):
    layer = Maxout(4, pieces=3, kernel_regularizer=L2(0.01),
                   activity_regularizer=L2(0.02),
                   kernel_constraint="non_neg", name="mx")
    config = json.loads(json.dumps(layer.get_config()))
    clone = Maxout.from_config(config)
    assert (clone.units, clone.pieces) == (4, 3)
    assert isinstance(clone.kernel_regularizer, L2)
    assert isinstance(clone.activity_regularizer, L2)
    model = keras.Sequential([keras.Input((5,)), layer, keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.default_rng(3).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    restored = loaded.get_layer("mx")
    assert isinstance(restored.kernel.regularizer, L2)
    assert restored.activity_regularizer.get_config() == {"l2": 0.02}
    assert restored.get_config() == layer.get_config()


def test_trains_on_digits(digits):
    (xt, yt), (xv, yv) = digits
    model = keras.Sequential(
        [keras.Input((64,)), Maxout(32, pieces=2), keras.layers.Dense(10)]
    )
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(xt, yt, epochs=3, batch_size=64, verbose=0)
    assert model.evaluate(xv, yv, verbose=0)[1] > 0.85


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = Maxout(3, pieces=2)
    y = layer(np.ones((2, 4), "float32"))
    assert keras.backend.standardize_dtype(y.dtype) == policy[6:]
    assert layer.kernel.dtype == "float32"


def test_bad_arguments_raise_naming_the_argument():
    for kwargs, name in [
        ({"units": 3, "pieces": 0}, "pieces"),
        ({"units": 3, "pieces": 1.5}, "pieces"),
        ({"units": 3, "pieces": True}, "pieces"),
        ({"units": 0}, "units"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            Maxout(**kwargs)


# The course's activations (topic 5): Keras' own where it matches.


def test_leaky_relu_is_max_of_point_one_x_and_x():
    x = np.linspace(-3, 3, 13).astype("float32")
    expected = np.maximum(0.1 * x, x)
    np.testing.assert_allclose(leaky_relu(x), expected, rtol=1e-6)
    np.testing.assert_allclose(
        keras.layers.LeakyReLU(negative_slope=0.1)(x), expected, rtol=1e-6
    )
    np.testing.assert_allclose(leaky_relu(x, 0.3), np.maximum(0.3 * x, x),
                               rtol=1e-6)


def test_leaky_relu_rejects_a_negative_slope_as_keras_layer_does():
    with pytest.raises(ValueError, match="`negative_slope`.*>= 0"):
        leaky_relu(np.ones(2, "float32"), negative_slope=-1.0)
    with pytest.raises(ValueError, match="negative_slope"):
        keras.layers.LeakyReLU(negative_slope=-1.0)


def test_keras_elu_is_the_course_formula():
    x = np.linspace(-3, 3, 13).astype("float32")
    for alpha in (1.0, 0.5):
        expected = np.where(x >= 0, x, alpha * (np.exp(x) - 1))
        np.testing.assert_allclose(
            keras.activations.elu(x, alpha=alpha), expected, rtol=1e-5,
            atol=1e-7,
        )
        np.testing.assert_allclose(
            keras.layers.ELU(alpha=alpha)(x), expected, rtol=1e-5, atol=1e-7
        )


def test_leaky_relu_activation_survives_safe_load(tmp_path):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation=leaky_relu)]
    )
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.layers[0].activation is leaky_relu
    x = -np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
