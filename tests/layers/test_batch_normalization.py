"""ktk.layers.BatchNormalization against Ioffe & Szegedy Alg. 1 and Keras."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_training_kit as ktk

BN = ktk.layers.BatchNormalization


def reference_bn(x, axes, gamma, beta, mm, mv, momentum, eps, training):
    """Algorithm 1 of the paper, written literally in float64 NumPy."""
    x = x.astype(np.float64)
    red = tuple(i for i in range(x.ndim) if i not in axes)
    bshape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if training:
        mu = x.mean(axis=red)
        var = ((x - mu.reshape(bshape)) ** 2).mean(axis=red)
        mm = momentum * mm + (1 - momentum) * mu
        mv = momentum * mv + (1 - momentum) * var
    else:
        mu, var = mm, mv
    x_hat = (x - mu.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps)
    y = gamma.reshape(bshape) * x_hat + beta.reshape(bshape)
    return y, mm, mv


def _data(shape, seed, scale=3.0, shift=2.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * scale + shift).astype("float32")


@pytest.mark.parametrize(
    "shape, axis",
    [
        ((32, 8), -1),
        ((6, 5, 5, 4), -1),  # conv feature map, channels_last
        ((6, 4, 5, 5), 1),  # channels_first
        ((6, 4, 5, 3), [1, 3]),  # two feature axes
    ],
)
def test_matches_numpy_reference_over_steps(shape, axis):
    layer = BN(
        axis=axis,
        momentum=0.8,
        epsilon=1e-2,
        gamma_initializer=keras.initializers.RandomUniform(0.5, 1.5, seed=1),
        beta_initializer=keras.initializers.RandomNormal(seed=2),
    )
    layer.build(shape)
    rank = len(shape)
    axes = sorted(a % rank for a in np.atleast_1d(axis))
    gamma = layer.gamma.numpy().astype(np.float64)
    beta = layer.beta.numpy().astype(np.float64)
    assert gamma.shape == tuple(shape[a] for a in axes)
    mm = np.zeros(gamma.shape)
    mv = np.ones(gamma.shape)
    for step in range(4):
        x = _data(shape, step)
        y, mm, mv = reference_bn(x, axes, gamma, beta, mm, mv, 0.8, 1e-2, True)
        np.testing.assert_allclose(layer(x, training=True), y, atol=1e-5)
        np.testing.assert_allclose(layer.moving_mean, mm, atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance, mv, atol=1e-5)
    x = _data(shape, 99)
    y, _, _ = reference_bn(x, axes, gamma, beta, mm, mv, 0.8, 1e-2, False)
    np.testing.assert_allclose(layer(x, training=False), y, atol=1e-5)
    # Default call (no `training`) is inference and leaves statistics alone.
    np.testing.assert_allclose(layer(x), y, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean, mm, atol=1e-5)


@pytest.mark.parametrize(
    "shape, axis, center, scale",
    [
        ((64, 16), -1, True, True),
        ((8, 6, 6, 5), -1, True, True),
        ((8, 5, 6, 6), 1, False, True),
        ((8, 6, 6, 5), 3, True, False),
    ],
)
def test_matches_keras_outputs_statistics_and_gradients(
    shape, axis, center, scale
):
    kwargs = dict(
        axis=axis,
        momentum=0.9,
        epsilon=1e-3,
        center=center,
        scale=scale,
        moving_variance_initializer=keras.initializers.Constant(2.0),
        moving_mean_initializer=keras.initializers.Constant(0.5),
    )
    ours, theirs = BN(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    theirs.build(shape)
    rng = np.random.default_rng(3)
    for w in ("gamma", "beta"):
        if getattr(theirs, w) is not None:
            value = rng.uniform(0.5, 1.5, size=getattr(theirs, w).shape)
            getattr(ours, w).assign(value)
            getattr(theirs, w).assign(value)
    for step in range(3):
        x = tf.constant(_data(shape, step))
        upstream = tf.constant(_data(shape, 10 + step))
        grads = []
        for layer in (ours, theirs):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(y * upstream)
            grads.append(tape.gradient(loss, [x] + layer.trainable_weights))
            grads[-1].append(y)
        for a, b in zip(*grads):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(
            ours.moving_mean, theirs.moving_mean, atol=1e-5
        )
        np.testing.assert_allclose(
            ours.moving_variance, theirs.moving_variance, atol=1e-5
        )
    x = _data(shape, 7)
    np.testing.assert_allclose(
        ours(x, training=False), theirs(x, training=False), atol=1e-5
    )


def test_training_gradients_match_torch():
    import torch  # a declared test dependency: missing must fail
    x = _data((16, 6), 0)
    rng = np.random.default_rng(1)
    gamma = rng.uniform(0.5, 1.5, 6).astype("float32")
    beta = rng.normal(size=6).astype("float32")
    upstream = rng.normal(size=(16, 6)).astype("float32")

    layer = BN(epsilon=1e-3)
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=True)
        loss = tf.reduce_sum(y * upstream)
    gx, gg, gb = tape.gradient(loss, [xt, layer.gamma, layer.beta])

    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(gamma, requires_grad=True)
    tb = torch.tensor(beta, requires_grad=True)
    ty = torch.nn.functional.batch_norm(
        tx, None, None, tg, tb, training=True, eps=1e-3
    )
    (ty * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(gx, tx.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(gg, tg.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(gb, tb.grad.numpy(), atol=1e-5)


def test_mask_matches_keras():
    x = _data((4, 7, 3), 0)
    mask = np.ones((4, 7), bool)
    mask[0, 3:] = False
    mask[2, 1:] = False
    x_masked_garbage = x.copy()
    x_masked_garbage[~mask] = 1e3  # must not leak into the statistics
    ours, theirs = BN(momentum=0.5), keras.layers.BatchNormalization(
        momentum=0.5
    )
    for layer in (ours, theirs):
        layer.build(x.shape)
    y1 = ours(x_masked_garbage, training=True, mask=mask)
    y2 = theirs(x_masked_garbage, training=True, mask=mask)
    np.testing.assert_allclose(np.asarray(y1)[mask], np.asarray(y2)[mask],
                               atol=1e-4)
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, atol=1e-5)
    np.testing.assert_allclose(
        ours.moving_variance, theirs.moving_variance, atol=1e-4
    )
    kept = x[mask].astype(np.float64)
    np.testing.assert_allclose(
        ours.moving_mean, 0.5 * kept.mean(axis=0), atol=1e-5
    )
    # Inside a model with a masking layer the mask is passed and tolerated.
    model = keras.Sequential(
        [keras.Input((7, 3)), keras.layers.Masking(0.0), BN()]
    )
    assert model(x, training=True).shape == x.shape
    with pytest.raises(ValueError, match="mask"):
        ours(x, training=True, mask=np.ones((4,), bool))


def test_fit_matches_keras_model_and_frozen_layer_is_inference():
    def build(bn_cls):
        keras.utils.set_random_seed(5)
        return keras.Sequential([
            keras.Input((12,)),
            keras.layers.Dense(8, use_bias=False),
            bn_cls(momentum=0.7),
            keras.layers.Activation("relu"),
            keras.layers.Dense(3),
        ])

    x = _data((64, 12), 0)
    y = np.random.default_rng(0).integers(0, 3, 64)
    models = [build(BN), build(keras.layers.BatchNormalization)]
    for model in models:
        model.compile(
            keras.optimizers.SGD(0.1),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(models[0].weights, models[1].weights):
        np.testing.assert_allclose(a, b, atol=1e-5)

    layer = models[0].layers[1]
    layer.trainable = False
    before = layer.moving_mean.numpy().copy()
    out = layer(x[:, :8], training=True)
    np.testing.assert_allclose(out, layer(x[:, :8], training=False))
    np.testing.assert_array_equal(layer.moving_mean, before)


def test_jit_compile_matches_eager():
    x = _data((16, 4, 4, 3), 0)
    eager, jitted = BN(momentum=0.6), BN(momentum=0.6)
    eager.build(x.shape)
    jitted.build(x.shape)
    step = tf.function(lambda t: jitted(t, training=True), jit_compile=True)
    for _ in range(2):
        np.testing.assert_allclose(
            step(tf.constant(x)), eager(x, training=True), atol=1e-5
        )
    np.testing.assert_allclose(
        jitted.moving_variance, eager.moving_variance, atol=1e-5
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_float32_statistics(policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = BN(momentum=0.0)
    x = _data((64, 5), 0, scale=200.0, shift=300.0)  # x**2 overflows f16
    compute = policy.split("_")[1]
    y = layer(keras.ops.cast(x, compute), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == compute
    for w in layer.weights:
        assert keras.backend.standardize_dtype(w.dtype) == "float32"
    xc = np.asarray(keras.ops.cast(keras.ops.cast(x, compute), "float32"))
    xc = xc.astype(np.float64)
    # momentum=0: the moving statistics are exactly the batch's.
    np.testing.assert_allclose(layer.moving_mean, xc.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance, xc.var(0), rtol=1e-4)
    assert np.all(np.isfinite(np.asarray(y, dtype="float32")))
    np.testing.assert_allclose(
        np.asarray(y, "float32").std(0), np.ones(5), atol=0.05
    )


def test_config_round_trip_and_output_shape():
    layer = BN(
        axis=[1, 3],
        momentum=0.5,
        epsilon=0.01,
        center=False,
        gamma_regularizer=keras.regularizers.L2(0.1),
        gamma_constraint=keras.constraints.NonNeg(),
        moving_variance_initializer="zeros",
        name="bn",
    )
    config = layer.get_config()
    clone = BN.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    assert config["axis"] == [1, 3]
    assert layer.compute_output_shape((None, 4, 5, 6)) == (None, 4, 5, 6)
    layer.build((None, 4, 5, 6))
    assert tuple(layer.gamma.shape) == (4, 6)
    assert layer.beta is None
    assert len(layer.trainable_weights) == 1
    assert len(layer.non_trainable_weights) == 2
    layer(np.ones((2, 4, 5, 6), "float32"), training=True)
    assert len(layer.losses) == 1
    with pytest.raises(ValueError, match="out of bounds"):
        BN(axis=3).compute_output_shape((None, 4))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": "0.9"}, "momentum"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": -1e-3}, "epsilon"),
        ({"axis": "last"}, "axis"),
        ({"axis": [1, 1]}, "axis"),
        ({"axis": []}, "axis"),
        ({"center": "yes"}, "center"),
        ({"scale": None}, "scale"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        BN(**kwargs)
