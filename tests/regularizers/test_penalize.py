"""`penalize`: every kernel, never normalization, idempotent, saveable."""

import keras
import numpy as np
import pytest

from keras_training_kit.layers import Maxout
from keras_training_kit.regularizers import L1L2, L2, penalize


def _zoo():
    """A model with one of each kind of kernel, nested and wrapped."""
    inner = keras.Sequential(
        [keras.layers.Dense(6, name="inner_dense")], name="inner"
    )
    img = keras.Input((6, 6, 2), name="img")
    seq = keras.Input((5,), dtype="int32", name="seq")
    a = keras.layers.Conv2D(3, 3, name="conv")(img)
    a = keras.layers.BatchNormalization(name="bn")(a)
    a = keras.layers.DepthwiseConv2D(3, name="dw")(a)
    a = keras.layers.SeparableConv2D(2, 2, name="sep")(a)
    a = keras.layers.Flatten()(a)
    a = Maxout(4, pieces=3, name="maxout")(a)
    a = keras.layers.LayerNormalization(name="ln")(a)
    b = keras.layers.Embedding(10, 4, name="emb")(seq)
    b = keras.layers.LSTM(3, name="lstm")(b)
    b = keras.layers.Bidirectional(
        keras.layers.GRU(2, return_sequences=True), name="bigru"
    )(keras.layers.RepeatVector(2)(b))
    b = keras.layers.Flatten()(b)
    z = inner(keras.layers.Concatenate()([a, b]))
    out = keras.layers.Dense(2, name="head")(z)
    return keras.Model([img, seq], out)


def _inputs(n=4):
    rng = np.random.default_rng(0)
    return [
        rng.normal(size=(n, 6, 6, 2)).astype("float32"),
        rng.integers(0, 10, size=(n, 5)).astype("int32"),
    ]


KERNEL_NAMES = {"kernel", "recurrent_kernel", "depthwise_kernel",
                "pointwise_kernel"}


def _expected(model, l1, l2, names):
    total = 0.0
    for w in model.trainable_weights:
        if w.name in names:
            a = w.numpy().astype("float64")
            total += l1 * np.abs(a).sum() + 0.5 * l2 * np.square(a).sum()
    return total


def test_penalty_sum_matches_every_kernel_and_nothing_else():
    model = _zoo()
    penalize(model, l1=0.01, l2=0.1)
    kernels = [w for w in model.trainable_weights if w.name in KERNEL_NAMES]
    # conv, dw, sep(2), maxout, lstm(2), 2 GRU cells(4), inner, head.
    assert len(kernels) == 13
    assert all(isinstance(w.regularizer, L1L2) for w in kernels)
    others = [w for w in model.weights if w.name not in KERNEL_NAMES]
    assert all(w.regularizer is None for w in others), [
        w.path for w in others if w.regularizer is not None
    ]
    np.testing.assert_allclose(
        float(np.sum([float(x) for x in model.losses])),
        _expected(model, 0.01, 0.1, KERNEL_NAMES),
        rtol=1e-5,
    )


def test_include_bias_and_embeddings_and_never_normalization():
    model = _zoo()
    penalize(model, l2=0.1, include_bias=True, include_embeddings=True)
    names = KERNEL_NAMES | {"bias", "embeddings"}
    np.testing.assert_allclose(
        float(np.sum([float(x) for x in model.losses])),
        _expected(model, 0.0, 0.1, names),
        rtol=1e-5,
    )
    for layer_name in ("bn", "ln"):
        for w in model.get_layer(layer_name).weights:
            assert w.regularizer is None, w.path


def test_idempotent_and_replaces_the_penalty():
    model = _zoo()
    penalize(model, l2=0.1)
    once = float(np.sum([float(x) for x in model.losses]))
    count = len(model.losses)
    penalize(model, l2=0.1)
    assert len(model.losses) == count
    np.testing.assert_allclose(
        float(np.sum([float(x) for x in model.losses])), once, rtol=1e-6
    )
    penalize(model)  # l1 = l2 = 0 removes it
    assert model.losses == []


def test_penalty_survives_save_and_safe_load(tmp_path):
    model = _zoo()
    penalize(model, l1=0.001, l2=0.01)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert len(loaded.losses) == len(model.losses)
    np.testing.assert_allclose(
        float(np.sum([float(x) for x in loaded.losses])),
        float(np.sum([float(x) for x in model.losses])),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        loaded.predict(_inputs(), verbose=0),
        model.predict(_inputs(), verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


def test_fit_sees_the_penalty_even_after_an_earlier_fit():
    """With η = 0 the reported loss is data loss + penalty, exactly."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")
    plain = model.fit(x, y, batch_size=32, verbose=0).history["loss"][0]
    penalize(model, l2=0.5)  # after the train function was traced
    penalized = model.fit(x, y, batch_size=32, verbose=0).history["loss"][0]
    np.testing.assert_allclose(
        penalized - plain, _expected(model, 0.0, 0.5, {"kernel"}), rtol=1e-4
    )


def test_unbuilt_model_gets_the_penalty_when_it_builds():
    model = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(2)])
    penalize(model, l2=0.2)
    model.build((None, 5))
    assert len(model.losses) == 2
    assert isinstance(model.layers[0].kernel.regularizer, L2)
    np.testing.assert_allclose(
        float(np.sum([float(x) for x in model.losses])),
        _expected(model, 0.0, 0.2, {"kernel"}),
        rtol=1e-5,
    )


def test_bad_arguments_raise_naming_the_argument():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    for kwargs, name in [({"l1": -0.1}, "l1"), ({"l2": -1.0}, "l2")]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            penalize(model, **kwargs)
    with pytest.raises(ValueError, match="`model`"):
        penalize("model", l2=0.1)
