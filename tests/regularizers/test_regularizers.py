"""L1, L2, L1L2 against NumPy references of the course's formulas."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit.regularizers import L1, L1L2, L2

RNG = np.random.default_rng(0)
W = RNG.normal(size=(5, 3)).astype("float32")


def np_penalty(w, l1=0.0, l2=0.0):
    """The course: λ₁‖w‖₁ + (λ₂/2)‖w‖²."""
    w = w.astype("float64")
    return l1 * np.abs(w).sum() + 0.5 * l2 * np.square(w).sum()


def np_grad(w, l1=0.0, l2=0.0):
    return l1 * np.sign(w) + l2 * w


CASES = [
    (L2(0.3), 0.0, 0.3),
    (L1(0.2), 0.2, 0.0),
    (L1L2(l1=0.2, l2=0.3), 0.2, 0.3),
    (L1L2(), 0.0, 0.0),
]


def test_value_and_gradient_match_numpy():
    for reg, l1, l2 in CASES:
        w = tf.Variable(W)
        with tf.GradientTape() as tape:
            value = reg(w)
        grad = tape.gradient(value, w)
        np.testing.assert_allclose(
            float(value), np_penalty(W, l1, l2), rtol=1e-6
        )
        if grad is None:  # L1L2() with zero factors has no path to w
            assert l1 == l2 == 0.0
        else:
            np.testing.assert_allclose(
                grad.numpy(), np_grad(W, l1, l2), rtol=1e-6
            )


def test_keras_builtins_differ_by_the_course_one_half():
    # Keras' L2 has no 1/2: ktk L2(2c) == keras L2(c); L1 identical.
    x = tf.constant(W)
    np.testing.assert_allclose(
        float(L2(0.2)(x)), float(keras.regularizers.L2(0.1)(x)), rtol=1e-6
    )
    np.testing.assert_allclose(
        float(L1(0.1)(x)), float(keras.regularizers.L1(0.1)(x)), rtol=1e-6
    )
    np.testing.assert_allclose(
        float(L1L2(0.1, 0.2)(x)),
        float(keras.regularizers.L1L2(0.1, 0.1)(x)),
        rtol=1e-6,
    )


def test_penalty_keeps_the_dtype_of_the_weights():
    x = tf.constant(W, dtype="float16")
    assert L1L2(0.1, 0.1)(x).dtype == tf.float16


def test_config_and_json_round_trip():
    for reg in (L2(0.25), L1(0.5), L1L2(0.5, 0.25)):
        clone = type(reg).from_config(reg.get_config())
        assert clone.get_config() == reg.get_config()
        blob = json.dumps(keras.saving.serialize_keras_object(reg))
        back = keras.saving.deserialize_keras_object(json.loads(blob))
        assert type(back) is type(reg)
        assert back.get_config() == reg.get_config()
        np.testing.assert_allclose(float(back(W)), float(reg(W)), rtol=1e-6)


def test_bad_factors_raise_value_error_naming_the_argument():
    cases = [
        (lambda: L2(-0.1), "l2"),
        (lambda: L1(-1.0), "l1"),
        (lambda: L1L2(l1=-0.1), "l1"),
        (lambda: L1L2(l2=float("nan")), "l2"),
        (lambda: L2("0.1"), "l2"),
        (lambda: L1(float("inf")), "l1"),
    ]
    for make, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            make()


def _linear_model(reg, w0):
    model = keras.Sequential(
        [
            keras.Input((w0.shape[0],)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_regularizer=reg,
                kernel_initializer=keras.initializers.Constant(w0),
            ),
        ]
    )
    return model


def test_one_sgd_step_with_l2_is_weight_decay():
    """w ← (1 − ηλ)w − η ∂L/∂w, with L the data loss (MSE)."""
    eta, lam = 0.1, 0.5
    x = RNG.normal(size=(16, 5)).astype("float32")
    y = RNG.normal(size=(16, 1)).astype("float32")
    w0 = RNG.normal(size=(5, 1)).astype("float32")
    model = _linear_model(L2(lam), w0)
    model.compile(keras.optimizers.SGD(eta), "mse")
    model.train_on_batch(x, y)
    data_grad = 2.0 / len(x) * x.T @ (x @ w0 - y)  # ∂ mean((xw−y)²) / ∂w
    expected = (1 - eta * lam) * w0 - eta * data_grad
    np.testing.assert_allclose(
        model.layers[0].kernel.numpy(), expected, rtol=1e-5, atol=1e-6
    )


def test_one_sgd_step_with_l1_is_the_course_update():
    """w ← w − ηλ·sgn(w) − η ∂L/∂w."""
    eta, lam = 0.1, 0.5
    x = RNG.normal(size=(16, 5)).astype("float32")
    y = RNG.normal(size=(16, 1)).astype("float32")
    w0 = RNG.normal(size=(5, 1)).astype("float32")
    model = _linear_model(L1(lam), w0)
    model.compile(keras.optimizers.SGD(eta), "mse")
    model.train_on_batch(x, y)
    data_grad = 2.0 / len(x) * x.T @ (x @ w0 - y)
    expected = w0 - eta * lam * np.sign(w0) - eta * data_grad
    np.testing.assert_allclose(
        model.layers[0].kernel.numpy(), expected, rtol=1e-5, atol=1e-6
    )


def _sparse_regression_fit(reg, eta=0.01, steps=600):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 20)).astype("float32")
    w_true = np.zeros((20, 1), "float32")
    w_true[:3, 0] = [3.0, -2.0, 1.5]
    y = x @ w_true + rng.normal(scale=1.0, size=(200, 1)).astype("float32")
    model = _linear_model(reg, np.zeros((20, 1), "float32"))
    model.compile(keras.optimizers.SGD(eta), "mse")
    # Full-batch gradient descent: minibatch noise would blur the zeros.
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(
        data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0
    )
    return model.layers[0].kernel.numpy()[:, 0]


def test_l1_drives_more_weights_to_zero_than_l2():
    """The course's sparsity claim on a 3-of-20 sparse regression.

    Honest note: plain (sub)gradient descent on λ|w| never lands exactly
    on 0.0; an irrelevant weight ends up oscillating in a band of width
    about ηλ around zero. So "zero" here means |w| < 2ηλ = 0.01, while the
    irrelevant weights that L2 only shrinks keep the size of their
    least-squares noise, about 2σ/√n ≈ 0.07 here.
    """
    eta, lam = 0.01, 0.5
    threshold = 2 * eta * lam
    w_l1 = _sparse_regression_fit(L1(lam), eta)
    w_l2 = _sparse_regression_fit(L2(lam), eta)
    zeros_l1 = int(np.sum(np.abs(w_l1[3:]) < threshold))
    zeros_l2 = int(np.sum(np.abs(w_l2[3:]) < threshold))
    assert zeros_l1 >= 14, (zeros_l1, w_l1)
    assert zeros_l2 <= 6, (zeros_l2, w_l2)
    assert zeros_l1 > zeros_l2
    # The informative weights survive both penalties.
    assert np.all(np.abs(w_l1[:3]) > 1.0)
    assert np.all(np.abs(w_l2[:3]) > 1.0)
