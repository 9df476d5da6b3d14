"""ktk.layers.recalibrate_batch_norm: exact population statistics."""

import keras
import numpy as np
import pytest

import keras_training_kit as ktk


def _two_bn_model():
    """A kit BN in the outer model, a Keras BN inside a nested model."""
    inner = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5),
            keras.layers.BatchNormalization(epsilon=1e-2),
        ],
        name="inner",
    )
    inputs = keras.Input((4,))
    h = keras.layers.Dense(6, name="d1")(inputs)
    h = ktk.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.Activation("tanh")(h)
    h = inner(h)
    outputs = keras.layers.Dense(2)(h)
    return keras.Model(inputs, outputs)


def test_statistics_are_exact_population_moments_layer_by_layer():
    model = _two_bn_model()
    rng = np.random.default_rng(0)
    # Large offset: a naive E[x^2]-E[x]^2 or an average of batch variances
    # would be visibly wrong.
    x = (rng.normal(size=(500, 4)) * 3 + 20).astype("float32")
    returned = ktk.layers.recalibrate_batch_norm(model, x, batch_size=64)
    assert returned is model

    w1, b1 = (w.astype(np.float64) for w in model.get_layer("d1").get_weights())
    z1 = x.astype(np.float64) @ w1 + b1
    bn1 = model.get_layer("bn1")
    np.testing.assert_allclose(bn1.moving_mean, z1.mean(0), rtol=1e-6)
    np.testing.assert_allclose(bn1.moving_variance, z1.var(0), rtol=1e-5)

    # The second layer sees the first one already recalibrated.
    g1, be1, m1, v1 = (w.astype(np.float64) for w in bn1.get_weights())
    a1 = np.tanh(g1 * (z1 - m1) / np.sqrt(v1 + bn1.epsilon) + be1)
    inner = model.get_layer("inner")
    w2, b2 = (w.astype(np.float64) for w in inner.layers[0].get_weights())
    z2 = a1 @ w2 + b2
    bn2 = inner.layers[1]
    np.testing.assert_allclose(bn2.moving_mean, z2.mean(0), atol=1e-5)
    np.testing.assert_allclose(bn2.moving_variance, z2.var(0), rtol=1e-4)

    # Batch size does not change the result (exact, not averaged).
    first = [w.numpy().copy() for w in model.non_trainable_weights]
    ktk.layers.recalibrate_batch_norm(model, x, batch_size=7)
    for a, b in zip(first, model.non_trainable_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_conv_feature_maps_and_masks():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5, 5, 3)).astype("float32") * 2 + 1
    model = keras.Sequential(
        [keras.Input((5, 5, 3)), ktk.layers.BatchNormalization(axis=-1)]
    )
    ktk.layers.recalibrate_batch_norm(model, x, batch_size=16)
    bn = model.layers[0]
    flat = x.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(bn.moving_mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, flat.var(0), rtol=1e-5)

    seq = rng.normal(size=(30, 6, 2)).astype("float32")
    lengths = rng.integers(1, 7, size=30)
    for i, n in enumerate(lengths):
        seq[i, n:] = 0.0  # padding, masked out by Masking
    model = keras.Sequential(
        [keras.Input((6, 2)), keras.layers.Masking(0.0),
         keras.layers.BatchNormalization()]
    )
    ktk.layers.recalibrate_batch_norm(model, seq, batch_size=8)
    kept = np.concatenate([seq[i, :n] for i, n in enumerate(lengths)])
    bn = model.layers[1]
    np.testing.assert_allclose(bn.moving_mean, kept.mean(0), atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, kept.var(0), rtol=1e-5)


def test_recalibration_after_small_batch_training_helps(digits):
    (xt, yt), (xv, yv) = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(64, use_bias=False),
        ktk.layers.BatchNormalization(momentum=0.99),
        keras.layers.Activation("relu"),
        keras.layers.Dense(64, use_bias=False),
        keras.layers.BatchNormalization(momentum=0.99),
        keras.layers.Activation("relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy"
    )
    # 40 steps of batch 8 with momentum 0.99: the moving statistics still
    # carry ~2/3 of their initial (0, 1) values.
    model.fit(xt[:320], yt[:320], batch_size=8, epochs=1, verbose=0)
    before = model.evaluate(xv, yv, verbose=0)
    ktk.layers.recalibrate_batch_norm(model, xt)
    after = model.evaluate(xv, yv, verbose=0)
    assert after <= before
    assert after < 0.9 * before  # here the lag costs a lot


def test_model_without_batch_norm_and_bad_arguments():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x = np.ones((5, 3), "float32")
    weights = [w.numpy() for w in model.weights]
    assert ktk.layers.recalibrate_batch_norm(model, x) is model
    for a, b in zip(weights, model.weights):
        np.testing.assert_array_equal(a, b)
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="`batch_size`"):
            ktk.layers.recalibrate_batch_norm(model, x, batch_size=bad)
    for bad_x in (np.ones((0, 3)), [], "data", {"a": np.ones((2, 3)),
                                              "b": np.ones((3, 3))}):
        with pytest.raises(ValueError, match="`x`"):
            ktk.layers.recalibrate_batch_norm(model, bad_x)
    with pytest.raises(ValueError, match="`model`"):
        ktk.layers.recalibrate_batch_norm("model", x)


class _Block(keras.layers.Layer):
    """A custom layer that hides a batch-norm layer inside."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3)
        self.bn = ktk.layers.BatchNormalization()

    def call(self, x, training=None):
        return self.bn(self.dense(x), training=training)


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.block = _Block()
        self.bn = keras.layers.BatchNormalization(epsilon=0.5)

    def call(self, x, training=None):
        return self.bn(self.block(x, training=training), training=training)


def test_layers_inside_custom_layers_and_subclassed_models():
    x = np.random.default_rng(2).normal(size=(50, 4)).astype("float32")
    x = x * 3 + 5
    model = _Subclassed()
    model(x[:2])
    ktk.layers.recalibrate_batch_norm(model, x, batch_size=16)
    kernel, bias = (w.numpy().astype(np.float64)
                    for w in model.block.dense.weights)
    z = x.astype(np.float64) @ kernel + bias
    inner = model.block.bn
    np.testing.assert_allclose(inner.moving_mean, z.mean(0), rtol=1e-5)
    np.testing.assert_allclose(inner.moving_variance, z.var(0), rtol=1e-5)
    # The outer layer sees inputs normalized by the recalibrated inner one:
    # mean 0 and variance var / (var + epsilon) exactly.
    var = z.var(0)
    np.testing.assert_allclose(model.bn.moving_mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(
        model.bn.moving_variance, var / (var + inner.epsilon), rtol=1e-5
    )


def test_functional_models_are_measured_by_sub_models(monkeypatch):
    """Public API path: BN layers in the model's own graph are read through
    `keras.Model(model.input, layer.input)`, no `call` is overridden."""
    from keras_training_kit.layers import recalibrate

    def forbidden(self):
        raise AssertionError("a layer's call was overridden")

    monkeypatch.setattr(recalibrate._Intercept, "__enter__", forbidden)
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, name="d")(inputs)
    h = keras.layers.BatchNormalization(name="bn_a")(h)
    h = ktk.layers.BatchNormalization(name="bn_b")(
        keras.layers.Activation("relu")(h)
    )
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    x = np.random.default_rng(3).normal(size=(100, 3)).astype("float32") * 4
    ktk.layers.recalibrate_batch_norm(model, x, batch_size=30)
    w, b = model.get_layer("d").get_weights()
    z = x.astype("float64") @ w + b
    np.testing.assert_allclose(model.get_layer("bn_a").moving_mean,
                               z.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_layer("bn_a").moving_variance,
                               z.var(0), rtol=1e-5)
    a = np.maximum(model.get_layer("bn_a")(z.astype("float32"),
                                          training=False), 0.0)
    a = keras.ops.convert_to_numpy(a).astype("float64")
    np.testing.assert_allclose(model.get_layer("bn_b").moving_mean,
                               a.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_layer("bn_b").moving_variance,
                               a.var(0), rtol=1e-4, atol=1e-6)
