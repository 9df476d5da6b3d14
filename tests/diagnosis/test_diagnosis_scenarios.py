"""The labelled scenario suite: small, seeded, real training runs that each
exhibit one pathology (checked by an independent measurement inside the
test), and healthy runs that must stay silent. The diagnosis must name
exactly the expected code, and nothing on the healthy runs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_training_kit as ktk

L = keras.layers
pytestmark = pytest.mark.slow


def problems(diag):
    return sorted(f.code for f in diag.findings if f.severity != "info")


def mlp(hidden, activation="relu", classes=10, inputs=64, **dense_kwargs):
    return keras.Sequential(
        [keras.Input((inputs,))]
        + [L.Dense(h, activation=activation, **dense_kwargs) for h in hidden]
        + [L.Dense(classes, activation="softmax")]
    )


def run(model, optimizer, x, y, val=None, epochs=5, batch_size=32, **kw):
    model.compile(optimizer, "sparse_categorical_crossentropy")
    diag = ktk.callbacks.TrainingDiagnosis(verbose=0, **kw)
    model.fit(
        x,
        y,
        validation_data=val,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=[diag],
    )
    return diag


def cross_entropy(model, x, y):
    """NumPy cross-entropy of the model's softmax output."""
    p = model.predict(x, verbose=0, batch_size=512)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)).mean())


def prior_entropy(y):
    p = np.bincount(y) / len(y)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# ------------------------------------------------------------ healthy runs


def test_healthy_classification(digits):
    (x, y), val = digits
    model = mlp([64])
    diag = run(model, keras.optimizers.Adam(1e-3), x, y, val, epochs=12)
    assert [f.code for f in diag.findings] == ["healthy"]
    assert problems(diag) == []
    acc = (model.predict(val[0], verbose=0).argmax(1) == val[1]).mean()
    assert acc > 0.93  # independent: it really is a good model
    assert "healthy" in diag.report()


def test_healthy_regression():
    from sklearn.datasets import make_regression

    x, y = make_regression(1000, 10, noise=5.0, random_state=0)
    x, y = x.astype("float32"), (y / y.std()).astype("float32")
    model = keras.Sequential(
        [keras.Input((10,)), L.Dense(32, activation="tanh"), L.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
    model.fit(
        x[:800],
        y[:800],
        validation_data=(x[800:], y[800:]),
        epochs=15,
        batch_size=32,
        verbose=0,
        callbacks=[diag],
    )
    assert [f.code for f in diag.findings] == ["healthy"]
    # The baseline is the target variance (constant predictor of MSE).
    assert diag.baseline_loss == pytest.approx(y[:64].var(), rel=0.5)
    pred = model.predict(x[800:], verbose=0).ravel()
    r2 = 1 - ((pred - y[800:]) ** 2).mean() / y[800:].var()
    assert r2 > 0.95


def test_healthy_conv_net(digits):
    (x, y), (xv, yv) = digits
    x, xv = x.reshape(-1, 8, 8, 1), xv.reshape(-1, 8, 8, 1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(16, 3, activation="relu", padding="same"),
            L.MaxPooling2D(),
            L.Conv2D(32, 3, activation="relu", padding="same"),
            L.GlobalAveragePooling2D(),
            L.Dense(10, activation="softmax"),
        ]
    )
    diag = run(model, keras.optimizers.Adam(3e-3), x, y, (xv, yv), epochs=10)
    assert [f.code for f in diag.findings] == ["healthy"]
    assert diag.activation_probes["units"] == {"conv2d": 16, "conv2d_1": 32}
    acc = (model.predict(xv, verbose=0).argmax(1) == yv).mean()
    assert acc > 0.85


# ------------------------------------------------------------- pathologies


def test_underfitting_one_unit_bottleneck(digits):
    (x, y), val = digits
    model = mlp([1], activation=None)
    diag = run(model, keras.optimizers.Adam(0.05), x, y, val, epochs=12)
    assert problems(diag) == ["underfitting"]
    # Independent: the training loss, recomputed, is > half the prior's
    # entropy, and training accuracy is poor.
    assert cross_entropy(model, x, y) > 0.5 * prior_entropy(y)
    assert (model.predict(x, verbose=0).argmax(1) == y).mean() < 0.6


def test_overfitting_small_training_set(digits):
    (x, y), val = digits
    model = mlp([512])
    diag = run(
        model, keras.optimizers.Adam(0.01), x[:100], y[:100], val, epochs=20
    )
    assert problems(diag) == ["overfitting"]
    f = diag.findings[0]
    hist = diag.history["val_loss"]
    assert f.evidence["best_epoch"] == int(np.argmin(hist))
    assert f.epoch == f.evidence["best_epoch"] + 1
    # Independent: near-zero training loss, much higher validation loss.
    assert cross_entropy(model, x[:100], y[:100]) < 0.01
    assert cross_entropy(model, *val) > 1.2 * min(hist)
    assert "overfitting from epoch" in diag.report()


def test_lr_too_high(digits):
    (x, y), val = digits
    model = mlp([64])
    diag = run(model, keras.optimizers.Adam(0.3), x, y, val, epochs=8)
    assert problems(diag) == ["lr_too_high"]
    # Independent: Keras' own History shows the training loss ending above
    # the chance level -log(1/10) it started from, and rising at times.
    keras_loss = np.array(model.history.history["loss"])
    assert keras_loss[-1] > -np.log(1 / 10)
    assert (np.diff(keras_loss) > 0).any()


def test_lr_too_low(digits):
    (x, y), val = digits
    diag = run(mlp([64]), keras.optimizers.SGD(0.002), x, y, val, epochs=8)
    assert problems(diag) == ["lr_too_low"]
    # Independent: the same model with 25x the learning rate gets much
    # further in the same epochs.
    keras.utils.set_random_seed(0)
    fast = mlp([64])
    fast.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    fast.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert cross_entropy(fast, x, y) < 0.5 * diag.history["loss"][-1]


def test_noisy_loss_batch_of_two(digits):
    (x, y), val = digits
    model = mlp([64])
    diag = run(
        model, keras.optimizers.SGD(0.02), x, y, val, epochs=3, batch_size=2
    )
    assert problems(diag) == ["noisy_loss"]
    # Independent: losses of random batches of 2, computed directly, scatter
    # more than their mean; batches of 64 do not.
    p = model.predict(x, verbose=0)
    per_example = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))
    rng = np.random.default_rng(0)
    for size, noisy in ((2, True), (64, False)):
        idx = rng.permutation(len(y))[: len(y) // size * size]
        batches = per_example[idx].reshape(-1, size).mean(1)
        assert bool(batches.std() / batches.mean() > 1.0) is noisy


def test_diverged_stops_and_keeps_best_weights(digits):
    (x, y), val = digits
    model = mlp([64])
    diag = run(model, keras.optimizers.SGD(50.0), x, y, val, epochs=5)
    assert problems(diag) == ["diverged"]
    assert diag.findings[0].severity == "error"
    # Independent: training stopped in the first epoch, and the restored
    # weights are finite and still predict finitely.
    assert len(diag.history["loss"]) == 1
    assert not np.isfinite(diag.history["loss"][0])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert np.isfinite(model.predict(val[0], verbose=0)).all()


def test_vanishing_gradients_deep_sigmoid(digits):
    (x, y), val = digits
    model = mlp([32] * 8, activation="sigmoid")
    diag = run(model, keras.optimizers.SGD(0.05), x, y, val, epochs=3)
    assert problems(diag) == ["vanishing_gradients"]
    # Independent: gradient norms from a GradientTape on validation data.
    xv, yv = val
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(yv, model(xv))
        loss = tf.reduce_mean(loss)
    kernels = [model.layers[0].kernel, model.layers[-1].kernel]
    grads = tape.gradient(loss, kernels)
    rms = [float(tf.sqrt(tf.reduce_mean(g**2))) for g in grads]
    assert rms[0] / rms[1] < 1e-3


def test_exploding_gradients_large_init(digits):
    (x, y), val = digits
    init = keras.initializers.RandomNormal(stddev=1.0, seed=0)
    model = mlp([64] * 6, activation=None, kernel_initializer=init)
    diag = run(model, keras.optimizers.SGD(1e-6), x, y, val, epochs=2)
    assert problems(diag) == ["exploding_gradients"]
    # Independent: the gradient is orders of magnitude larger than the
    # weights, so one SGD step of 1e-2 multiplies the loss.
    xv, yv = val
    before = cross_entropy(model, xv, yv)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(yv, model(xv))
        )
    grads = tape.gradient(loss, model.trainable_weights)
    gnorm = float(tf.linalg.global_norm(grads))
    wnorm = float(tf.linalg.global_norm(model.trainable_weights))
    assert gnorm > 100 * wnorm
    for w, g in zip(model.trainable_weights, grads):
        w.assign_sub(1e-2 * g)
    assert cross_entropy(model, xv, yv) > 2 * before


def test_dead_units_negative_bias(digits):
    (x, y), val = digits
    model = mlp([64], bias_initializer=keras.initializers.Constant(-10.0))
    diag = run(model, keras.optimizers.Adam(1e-3), x, y, val, epochs=3)
    assert problems(diag) == ["dead_units"]
    # Independent: a sub-model's ReLU outputs on all training examples.
    sub = keras.Model(model.inputs, model.layers[0].output)
    acts = sub.predict(x, verbose=0)
    dead = (acts.max(axis=0) <= 0).mean()
    assert dead > 0.9
    assert dead == pytest.approx(diag.findings[0].evidence["fraction"], abs=0.1)


def test_saturated_units_large_tanh_init(digits):
    (x, y), val = digits
    init = keras.initializers.RandomNormal(stddev=3.0, seed=0)
    model = mlp([64], activation="tanh", kernel_initializer=init)
    diag = run(model, keras.optimizers.SGD(0.01), x, y, val, epochs=3)
    assert problems(diag) == ["saturated_units"]
    sub = keras.Model(model.inputs, model.layers[0].output)
    pinned = (np.abs(sub.predict(val[0], verbose=0)) > 0.99).mean()
    assert pinned > 0.5
    assert diag.findings[0].evidence["fraction"] == pytest.approx(
        pinned, abs=0.1
    )


def test_unscaled_inputs_breast_cancer():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x, y = x.astype("float32"), y.astype("int32")

    def fit(inputs):
        keras.utils.set_random_seed(0)
        model = mlp([16], classes=2, inputs=30)
        return run(model, keras.optimizers.Adam(1e-3), inputs, y, epochs=8)

    diag = fit(x)
    assert problems(diag) == ["unscaled_inputs"]
    ev = diag.findings[0].evidence
    assert ev["spread"] > 1e4 and ev["features"] == 30
    # Independent: the features' std ratio over the whole set, and the
    # remedy (standardization) trains the same model to a far lower loss.
    std = x.std(axis=0)
    assert std.max() / std.min() > 1e4
    fixed = fit((x - x.mean(0)) / x.std(0))
    assert problems(fixed) == []
    assert fixed.history["loss"][-1] < 0.2 * diag.history["loss"][-1]
