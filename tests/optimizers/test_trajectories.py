"""Step-by-step trajectories against NumPy references of the contract.

Backend-agnostic: this module runs as is under KERAS_BACKEND=torch and jax
too (see test_training.py). Two variables per run, a large and a small one.
"""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

sys.path.insert(0, str(Path(__file__).parent))
import _reference as ref  # noqa: E402

STEPS = 12
# 262,144 + 12 values: on TensorFlow outside XLA the compiled path updates
# the large variable (>= `_fuse_min_size`) and the plain path the small one
# in the same step; the plain path alone is tested by turning the other off.
SHAPES = [(512, 512), (3, 4)]


def _grads(seed=0):
    rng = np.random.default_rng(seed)
    return [
        [rng.normal(size=s) * rng.uniform(0.1, 3.0) for s in SHAPES]
        for _ in range(STEPS)
    ]


def _start(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in SHAPES]


def run_kit(optimizer, dtype="float64", mode="eager", seed=0):
    """Applies the gradient sequence; returns weights after each step."""
    variables = [keras.Variable(w, dtype=dtype) for w in _start()]
    optimizer.build(variables)
    def apply(grads):
        optimizer.apply(grads, variables)

    if mode != "eager" and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        apply = tf.function(apply, jit_compile=(mode == "jit"))
    out = []
    for grads in _grads(seed):
        apply([keras.ops.convert_to_tensor(g, dtype=dtype) for g in grads])
        out.append([np.array(keras.ops.convert_to_numpy(v)) for v in variables])
    return out


def run_ref(fn, **hyper):
    # Keras keeps the learning rate in a float32 variable: the reference
    # uses that same number, so float64 runs can be held to 1e-6.
    if "learning_rate" in hyper:
        hyper["learning_rate"] = float(np.float32(hyper["learning_rate"]))
    grads = _grads()
    per_var = [
        fn(w, [g[i] for g in grads], **hyper) for i, w in enumerate(_start())
    ]
    return [[per_var[i][t] for i in range(len(SHAPES))] for t in range(STEPS)]


def assert_same(actual, expected, rtol):
    """Equal to `rtol` relative to each tensor's scale.

    Elements that cancel to near zero (w − ηg ≈ 0) cannot keep a per-element
    relative error in float32, so the absolute floor is `rtol` times the
    tensor's largest magnitude.
    """
    for t, (a_step, e_step) in enumerate(zip(actual, expected)):
        for a, e in zip(a_step, e_step):
            np.testing.assert_allclose(
                a, e, rtol=rtol, atol=rtol * np.max(np.abs(e)),
                err_msg=f"step {t}",
            )


CASES = [
    ("sgd", ktk.optimizers.SGD, ref.sgd, {"learning_rate": 0.05}),
    ("momentum", ktk.optimizers.Momentum, ref.momentum,
     {"learning_rate": 0.05, "momentum": 0.9}),
    ("nesterov", ktk.optimizers.Momentum, ref.momentum,
     {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True}),
    ("momentum_ema", ktk.optimizers.Momentum, ref.momentum,
     {"learning_rate": 0.5, "momentum": 0.9, "ema": True}),
    ("nesterov_ema", ktk.optimizers.Momentum, ref.momentum,
     {"learning_rate": 0.5, "momentum": 0.7, "ema": True, "nesterov": True}),
    ("adagrad", ktk.optimizers.Adagrad, ref.adagrad,
     {"learning_rate": 0.3, "epsilon": 1e-3, "initial_accumulator_value": 0.1}),
    ("rmsprop_slide", ktk.optimizers.RMSProp, ref.rmsprop,
     {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-3,
      "init_with_first_gradient": True}),
    ("rmsprop_zero", ktk.optimizers.RMSProp, ref.rmsprop,
     {"learning_rate": 0.01, "rho": 0.8, "epsilon": 1e-7,
      "init_with_first_gradient": False}),
    ("adam", ktk.optimizers.Adam, ref.adam,
     {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 0.1}),
    ("amsgrad", ktk.optimizers.Adam, ref.adam,
     {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-8,
      "amsgrad": True}),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,cls,fn,hyper", CASES, ids=IDS)
def test_float64_matches_reference(name, cls, fn, hyper):
    assert_same(run_kit(cls(**hyper)), run_ref(fn, **hyper), rtol=1e-6)


@pytest.mark.parametrize("name,cls,fn,hyper", CASES, ids=IDS)
def test_float32_matches_reference(name, cls, fn, hyper):
    actual = run_kit(cls(**hyper), dtype="float32")
    assert_same(actual, run_ref(fn, **hyper), rtol=1e-5)


def test_adagrad_slide_form_equals_simplified_form():
    """The course: (ηᵗ/σᵗ) gᵗ with ηᵗ = η/√(t+1) is η gᵗ / √(Σ g²)."""
    slide = run_ref(ref.adagrad_slide_form, learning_rate=0.3)
    kit = run_kit(ktk.optimizers.Adagrad(learning_rate=0.3, epsilon=0.0))
    assert_same(kit, slide, rtol=1e-6)
    # and the reference is not trivially the same function
    simplified = run_ref(ref.adagrad, learning_rate=0.3, epsilon=0.0)
    assert_same(simplified, slide, rtol=1e-9)


@pytest.mark.parametrize("nesterov", [False, True])
def test_ema_momentum_equals_movement_form_with_scaled_rate(nesterov):
    """The course's two momentum forms: η' = η(1 − β) makes them equal."""
    eta, beta = 0.05, 0.9
    movement = run_kit(
        ktk.optimizers.Momentum(eta * (1 - beta), beta, nesterov=nesterov)
    )
    moving_average = run_kit(
        ktk.optimizers.Momentum(eta, beta, ema=True, nesterov=nesterov)
    )
    assert_same(moving_average, movement, rtol=1e-6)
    # with the same η they differ by the factor (1 − β)
    same_eta = run_kit(ktk.optimizers.Momentum(eta, beta, nesterov=nesterov))
    assert not np.allclose(same_eta[-1][0], moving_average[-1][0])


def _steps_to_target(optimizer, target=1e-3, max_steps=2000):
    """Steps until ½ Σ λᵢ wᵢ² < target on an ill-conditioned quadratic."""
    lam = np.array([1.0, 100.0])
    w = keras.Variable(np.array([1.0, 1.0]), dtype="float64")
    for step in range(1, max_steps + 1):
        g = keras.ops.convert_to_tensor(lam * np.array(w.numpy()))
        optimizer.apply([g], [w])
        value = np.array(keras.ops.convert_to_numpy(w))
        if 0.5 * np.sum(lam * value**2) < target:
            return step
    return max_steps + 1


def test_momentum_beats_sgd_on_ill_conditioned_quadratic():
    """Condition number 100: momentum needs far fewer steps than SGD."""
    lr = 0.019  # SGD is stable for η < 2/100
    sgd_steps = _steps_to_target(ktk.optimizers.SGD(lr))
    momentum_steps = _steps_to_target(ktk.optimizers.Momentum(lr, 0.8))
    assert sgd_steps <= 2000, "SGD should converge at all"
    assert momentum_steps < sgd_steps / 3, (momentum_steps, sgd_steps)


def test_learning_rate_schedule_and_callable():
    """A schedule and a callable give the same steps as the numbers."""
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5)
    kit = run_kit(ktk.optimizers.SGD(sched))
    grads, w0 = _grads(), _start()[0]
    for t in range(STEPS):
        w0 = w0 - 0.1 * 0.5**t * grads[t][0]
    # the schedule itself computes in float32: compare at float32 precision
    np.testing.assert_allclose(kit[-1][0], w0, rtol=1e-6, atol=1e-6 * 4)
    calls = run_kit(ktk.optimizers.SGD(lambda: 0.05))
    assert_same(calls, run_ref(ref.sgd, learning_rate=0.05), rtol=1e-6)
