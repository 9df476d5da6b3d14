"""Every execution path and every independent implementation agree.

Paths: eager, `tf.function` (the compiled-update fast path), XLA
(`jit_compile=True`, plain `keras.ops` path) and the plain path forced by
`set_compiled_updates(False)`. Independent implementations: `torch.optim`
and Keras' built-ins, wherever their math is the same.
"""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

sys.path.insert(0, str(Path(__file__).parent))
from test_trajectories import (  # noqa: E402
    CASES,
    IDS,
    _grads,
    _start,
    assert_same,
    run_kit,
    run_ref,
)

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow paths"
)


@pytest.mark.parametrize("mode", ["graph", "jit"])
@pytest.mark.parametrize("name,cls,fn,hyper", CASES, ids=IDS)
def test_compiled_and_xla_paths_match_reference(name, cls, fn, hyper, mode):
    actual = run_kit(cls(**hyper), dtype="float32", mode=mode)
    assert_same(actual, run_ref(fn, **hyper), rtol=1e-5)


def test_plain_path_matches_reference_when_compiled_updates_off():
    ktk.optimizers.set_compiled_updates(False)
    try:
        for name, cls, fn, hyper in CASES:
            actual = run_kit(cls(**hyper), dtype="float32", mode="graph")
            assert_same(actual, run_ref(fn, **hyper), rtol=1e-5)
    finally:
        ktk.optimizers.set_compiled_updates(True)
    assert ktk.optimizers.compiled_updates_enabled()


def test_compiled_path_is_really_taken(monkeypatch):
    """The fast path must be the one that runs for large dense variables."""
    from keras_training_kit.optimizers import _compiled_update

    calls = []
    original = _compiled_update.apply
    monkeypatch.setattr(
        _compiled_update, "apply", lambda *a: calls.append(1) or original(*a)
    )
    run_kit(ktk.optimizers.Adam(), dtype="float32", mode="graph")
    assert calls, "large variables should use the compiled update"
    calls.clear()
    run_kit(ktk.optimizers.Adam(), dtype="float32", mode="jit")
    assert not calls, "inside XLA the plain keras.ops path must run"
    small = [keras.Variable(np.ones((8, 8), "float32"))]
    ktk.optimizers.Adam().apply([keras.ops.ones((8, 8))], small)
    assert not calls, "a small update should not pay for an XLA compile"


def test_only_large_variables_are_fused(monkeypatch):
    """The compiled call takes the variables of >= `_fuse_min_size`
    values, the plain path the rest, in the same step; the result is the
    rule's, and a small-variable model skips the compiled call."""
    import tensorflow as tf

    from keras_training_kit.optimizers import _compiled_update

    floor = ktk.optimizers.SGD._fuse_min_size
    assert floor >= _compiled_update.MIN_TOTAL_SIZE
    fused = []
    original = _compiled_update.apply
    monkeypatch.setattr(
        _compiled_update, "apply",
        lambda opt, g, v, lr: fused.append([int(np.prod(x.shape)) for x in v])
        or original(opt, g, v, lr),
    )
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(floor,)), rng.normal(size=(100, 50)),
             rng.normal(size=(7,))]
    grads = [rng.normal(size=w.shape) for w in start]
    for cls in (ktk.optimizers.SGD, ktk.optimizers.Momentum):
        variables = [keras.Variable(w, dtype="float32") for w in start]
        opt = cls(0.1)
        step = tf.function(lambda: opt.apply(
            [tf.constant(g, tf.float32) for g in grads], variables))
        step()
        step()
        # one record per trace (a first call that builds slots traces twice)
        assert fused and all(f == [floor] for f in fused), (cls.__name__,
                                                            fused)
        fused.clear()
        first = [w - 0.1 * g for w, g in zip(start, grads)]
        if cls is ktk.optimizers.SGD:
            expected = [w - 0.1 * g for w, g in zip(first, grads)]
        else:  # v2 = 0.9 v1 - lr g = -1.9 lr g
            expected = [w - 0.19 * g for w, g in zip(first, grads)]
        for want, var in zip(expected, variables):
            np.testing.assert_allclose(var.numpy(), want, rtol=1e-5,
                                       atol=1e-5)
    small = [keras.Variable(np.ones((100, 50), "float32")) for _ in range(14)]
    opt = ktk.optimizers.Adam(0.1)
    opt.build(small)
    tf.function(lambda: opt.apply([tf.ones((100, 50))] * 14, small))()
    assert not fused, "many small variables should stay on TF's kernels"


# ---- torch.optim ---------------------------------------------------------


def _torch_trajectory(make, steps=12):
    import torch

    params = [torch.tensor(w, dtype=torch.float64) for w in _start()]
    for p in params:
        p.requires_grad_(True)
    opt = make(params)
    out = []
    for grads in _grads()[:steps]:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


LR = float(np.float32(0.05))  # the float32 number Keras will hold

TORCH_CASES = [
    ("sgd", lambda t: lambda p: t.optim.SGD(p, lr=LR),
     ktk.optimizers.SGD(LR)),
    ("momentum", lambda t: lambda p: t.optim.SGD(p, lr=LR, momentum=0.9),
     ktk.optimizers.Momentum(LR, 0.9)),
    ("nesterov", lambda t: lambda p: t.optim.SGD(
        p, lr=LR, momentum=0.9, nesterov=True),
     ktk.optimizers.Momentum(LR, 0.9, nesterov=True)),
    # torch adds eps outside the root; equal at eps = 0
    ("adagrad", lambda t: lambda p: t.optim.Adagrad(
        p, lr=LR, eps=0.0, initial_accumulator_value=0.1),
     ktk.optimizers.Adagrad(LR, epsilon=0.0, initial_accumulator_value=0.1)),
    ("rmsprop", lambda t: lambda p: t.optim.RMSprop(
        p, lr=LR, alpha=0.9, eps=0.0),
     ktk.optimizers.RMSProp(LR, rho=0.9, epsilon=0.0,
                            init_with_first_gradient=False)),
    ("adam", lambda t: lambda p: t.optim.Adam(
        p, lr=LR, betas=(0.9, 0.999), eps=0.1),
     ktk.optimizers.Adam(LR, epsilon=0.1)),
    ("adamw", lambda t: lambda p: t.optim.AdamW(
        p, lr=LR, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1),
     ktk.optimizers.Adam(LR, beta_2=0.99, weight_decay=0.1)),
]


@pytest.mark.parametrize(
    "name,make,kit", TORCH_CASES, ids=[c[0] for c in TORCH_CASES]
)
def test_matches_torch_optim(name, make, kit):
    import torch  # a declared test dependency: missing must fail
    expected = _torch_trajectory(make(torch))
    assert_same(run_kit(kit), expected, rtol=1e-6)


# ---- Keras built-ins -------------------------------------------------------

KERAS_CASES = [
    ("sgd", keras.optimizers.SGD(0.05), ktk.optimizers.SGD(0.05)),
    ("momentum", keras.optimizers.SGD(0.05, momentum=0.9),
     ktk.optimizers.Momentum(0.05, 0.9)),
    ("nesterov", keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
     ktk.optimizers.Momentum(0.05, 0.9, nesterov=True)),
    ("adagrad", keras.optimizers.Adagrad(0.05, 0.1, epsilon=1e-3),
     ktk.optimizers.Adagrad(0.05, 1e-3, initial_accumulator_value=0.1)),
    ("rmsprop", keras.optimizers.RMSprop(0.01, rho=0.9, epsilon=1e-3),
     ktk.optimizers.RMSProp(0.01, rho=0.9, epsilon=1e-3,
                            init_with_first_gradient=False)),
    # Keras puts ε on the uncorrected √v: equal at ε = 0
    ("adam", keras.optimizers.Adam(0.01, epsilon=0.0),
     ktk.optimizers.Adam(0.01, epsilon=0.0)),
]


@pytest.mark.parametrize(
    "name,builtin,kit", KERAS_CASES, ids=[c[0] for c in KERAS_CASES]
)
def test_matches_keras_builtin(name, builtin, kit):
    assert_same(run_kit(kit), run_kit(builtin), rtol=1e-6)


def test_adam_epsilon_differs_from_keras_epsilon_hat_when_large():
    """The documented difference: Algorithm 1's ε vs Keras' ε̂."""
    ours = run_kit(ktk.optimizers.Adam(0.01, epsilon=1.0))
    keras_ = run_kit(keras.optimizers.Adam(0.01, epsilon=1.0))
    assert np.max(np.abs(ours[0][0] - keras_[0][0])) > 1e-4


def test_rmsprop_first_gradient_start_differs_from_zero_start():
    """σ⁰ = g⁰: the first step is η·sign(g) (ε = 0), not η·g/√((1−ρ)g²)."""
    w0 = _start()[0]
    g0 = _grads()[0][0]
    slide = run_kit(ktk.optimizers.RMSProp(0.01, epsilon=0.0))
    np.testing.assert_allclose(
        slide[0][0], w0 - np.float32(0.01) * np.sign(g0), rtol=1e-6
    )
    zero = run_kit(
        ktk.optimizers.RMSProp(
            0.01, epsilon=0.0, init_with_first_gradient=False
        )
    )
    step = np.abs(zero[0][0] - w0)
    np.testing.assert_allclose(step, np.float32(0.01) / np.sqrt(0.1), rtol=1e-6)


# ---- argument validation -----------------------------------------------------

BAD = [
    (ktk.optimizers.SGD, {"learning_rate": -0.1}, "learning_rate"),
    (ktk.optimizers.SGD, {"learning_rate": float("nan")}, "learning_rate"),
    (ktk.optimizers.Momentum, {"momentum": 1.0}, "momentum"),
    (ktk.optimizers.Momentum, {"momentum": -0.1}, "momentum"),
    (ktk.optimizers.Adagrad, {"epsilon": -1e-7}, "epsilon"),
    (ktk.optimizers.Adagrad, {"initial_accumulator_value": -1.0},
     "initial_accumulator_value"),
    (ktk.optimizers.RMSProp, {"rho": 1.5}, "rho"),
    (ktk.optimizers.RMSProp, {"epsilon": -1.0}, "epsilon"),
    (ktk.optimizers.Adam, {"beta_1": 1.0}, "beta_1"),
    (ktk.optimizers.Adam, {"beta_2": -0.5}, "beta_2"),
    (ktk.optimizers.Adam, {"learning_rate": "fast"}, "learning_rate"),
    (ktk.optimizers.Momentum, {"nesterov": "yes"}, "nesterov"),
    (ktk.optimizers.Momentum, {"ema": 2}, "ema"),
    (ktk.optimizers.Adam, {"amsgrad": "no"}, "amsgrad"),
    (ktk.optimizers.RMSProp, {"init_with_first_gradient": None},
     "init_with_first_gradient"),
    # Keras checks how the base options combine, the kit their ranges.
    (ktk.optimizers.SGD, {"weight_decay": -1.0}, "weight_decay"),
    (ktk.optimizers.SGD, {"clipnorm": -1.0}, "clipnorm"),
    (ktk.optimizers.Adam, {"clipvalue": 0.0}, "clipvalue"),
    (ktk.optimizers.RMSProp, {"global_clipnorm": float("inf")},
     "global_clipnorm"),
    (ktk.optimizers.Adagrad, {"use_ema": "yes"}, "use_ema"),
]


@pytest.mark.parametrize("cls,kwargs,name", BAD)
def test_bad_arguments_raise_value_error_naming_them(cls, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
        cls(**kwargs)


def test_integer_learning_rate_is_accepted():
    assert float(ktk.optimizers.SGD(1).learning_rate) == 1.0


# ---- base-class options -----------------------------------------------------


def test_clipnorm_limits_the_step():
    opt = ktk.optimizers.SGD(1.0, clipnorm=0.5)
    w = keras.Variable(np.zeros(3, "float32"))
    opt.apply([keras.ops.convert_to_tensor([3.0, 4.0, 0.0])], [w])
    np.testing.assert_allclose(w.numpy(), [-0.3, -0.4, 0.0], rtol=1e-6)


def test_gradient_accumulation_averages_before_the_step():
    opt = ktk.optimizers.SGD(1.0, gradient_accumulation_steps=2)
    w = keras.Variable(np.zeros(2, "float32"))
    opt.apply([keras.ops.convert_to_tensor([1.0, 3.0])], [w])
    np.testing.assert_allclose(w.numpy(), [0.0, 0.0])
    opt.apply([keras.ops.convert_to_tensor([3.0, 5.0])], [w])
    np.testing.assert_allclose(w.numpy(), [-2.0, -4.0], rtol=1e-6)
