"""`epsilon=0` (the course's equations exactly) never divides 0 by 0.

A weight whose gradients have all been 0 (a dead unit) has a zero
denominator in Adagrad, RMSProp and Adam; its step is 0, not NaN, on every
path: the plain `keras.ops` rule, TensorFlow's compiled update and XLA
(here), PyTorch's multi-tensor kernels (`tests/backends/_torch_checks.py`).
"""

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

MAKERS = {
    "Adagrad": lambda: ktk.optimizers.Adagrad(0.1, epsilon=0.0),
    "RMSProp": lambda: ktk.optimizers.RMSProp(0.1, epsilon=0.0),
    "RMSProp(zero start)": lambda: ktk.optimizers.RMSProp(
        0.1, epsilon=0.0, init_with_first_gradient=False
    ),
    "Adam": lambda: ktk.optimizers.Adam(0.1, epsilon=0.0),
    "Adam(amsgrad)": lambda: ktk.optimizers.Adam(
        0.1, epsilon=0.0, amsgrad=True
    ),
}
# one variable large enough for TensorFlow's fused update, one small
SHAPES = [(1 << 18,), (4, 3)]


def run(optimizer, mode, steps=3):
    """Steps with gradients whose first half is always 0; the weights."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=s).astype("float32") for s in SHAPES]
    variables = [keras.Variable(w) for w in start]
    optimizer.build(variables)

    def apply(grads):
        optimizer.apply(grads, variables)

    if mode in ("graph", "jit"):
        import tensorflow as tf

        apply = tf.function(apply, jit_compile=(mode == "jit"))
    for _ in range(steps):
        grads = []
        for s in SHAPES:
            g = rng.normal(size=s).astype("float32").reshape(-1)
            g[: g.size // 2] = 0.0
            grads.append(keras.ops.convert_to_tensor(g.reshape(s)))
        apply(grads)
    return start, [keras.ops.convert_to_numpy(v) for v in variables]


def modes():
    if keras.backend.backend() == "tensorflow":
        return ["eager", "plain", "graph", "jit"]
    if keras.backend.backend() == "torch":
        return ["eager", "plain"]
    return ["eager"]  # JAX has one path (fused by its jitted train step)


@pytest.mark.parametrize("mode", modes())
@pytest.mark.parametrize("name", list(MAKERS))
def test_dead_weights_stay_put_and_finite(name, mode):
    if mode == "plain":
        ktk.optimizers.set_compiled_updates(False)
    try:
        start, end = run(MAKERS[name](), mode)
    finally:
        if mode == "plain":
            ktk.optimizers.set_compiled_updates(True)
    for w0, w in zip(start, end):
        assert np.all(np.isfinite(w)), f"{name} ({mode}): non-finite weights"
        dead = w0.size // 2
        np.testing.assert_array_equal(w.reshape(-1)[:dead],
                                      w0.reshape(-1)[:dead])
        assert np.all(w.reshape(-1)[dead:] != w0.reshape(-1)[dead:])


def test_positive_epsilon_adds_no_guard():
    """With ε > 0 the denominator is used as it is (no extra op)."""
    x = keras.ops.zeros((2,))
    base = ktk.optimizers.Adam
    assert base._nonzero(x, 1e-7) is x
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(base._nonzero(x, 0.0)), [np.inf, np.inf]
    )
