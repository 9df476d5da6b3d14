"""PyTorch-only checks, run by `test_backend_matrix.py` (KERAS_BACKEND=torch).

The kit's multi-tensor `torch._foreach_*` update path (`_foreach_update`):

- it is the path taken on torch, in `apply` and in `fit`;
- it and the plain `keras.ops` rule (forced by `set_compiled_updates(False)`)
  both match the NumPy references of every rule, step by step;
- it matches `torch.optim` where the math is the same;
- a subclass that overrides `_rule` gets the plain path (its math is not
  the one written as foreach kernels), and mixed dtypes are grouped.

The trajectory module itself (`tests/optimizers/test_trajectories.py`) also
runs on torch, i.e. on this path, in the same matrix.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_training_kit as ktk
from keras_training_kit.optimizers import _foreach_update

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="run with KERAS_BACKEND=torch"
)

sys.path.insert(0, str(Path(__file__).parent.parent / "optimizers"))
from test_trajectories import (  # noqa: E402
    CASES,
    IDS,
    _grads,
    _start,
    assert_same,
    run_kit,
    run_ref,
)


@pytest.fixture
def foreach_calls(monkeypatch):
    calls = []
    original = _foreach_update.apply

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(_foreach_update, "apply", counting)
    return calls


@pytest.fixture
def plain_path():
    ktk.optimizers.set_compiled_updates(False)
    yield
    ktk.optimizers.set_compiled_updates(True)


def test_backend_is_torch():
    assert keras.backend.backend() == "torch"
    assert ktk.optimizers.compiled_updates_enabled()


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-6), ("float32", 1e-5)])
@pytest.mark.parametrize("name,cls,fn,hyper", CASES, ids=IDS)
def test_foreach_path_is_taken_and_matches_reference(
    name, cls, fn, hyper, dtype, rtol, foreach_calls
):
    actual = run_kit(cls(**hyper), dtype=dtype)
    assert len(foreach_calls) == len(actual), "foreach path not taken"
    assert_same(actual, run_ref(fn, **hyper), rtol=rtol)


@pytest.mark.parametrize("name,cls,fn,hyper", CASES, ids=IDS)
def test_plain_path_matches_reference_and_foreach(
    name, cls, fn, hyper, plain_path, foreach_calls
):
    plain = run_kit(cls(**hyper), dtype="float32")
    assert not foreach_calls, "set_compiled_updates(False) must be plain"
    assert_same(plain, run_ref(fn, **hyper), rtol=1e-5)


def test_foreach_and_plain_paths_agree():
    """Within the float64 reference tolerance: on torch, `keras.ops` turns
    Python constants (β, ρ) into float32 tensors first, so the plain path
    steps with β rounded to float32 (~1e-8 relative per step), the foreach
    path with the exact β."""
    for name, cls, fn, hyper in CASES:
        fast = run_kit(cls(**hyper))
        ktk.optimizers.set_compiled_updates(False)
        try:
            plain = run_kit(cls(**hyper))
        finally:
            ktk.optimizers.set_compiled_updates(True)
        assert_same(fast, plain, rtol=1e-6)


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


LR = float(np.float32(0.05))  # the float32 number Keras holds
TORCH_CASES = {
    "sgd": (lambda t, p: t.optim.SGD(p, lr=LR),
            lambda: ktk.optimizers.SGD(LR)),
    "momentum": (lambda t, p: t.optim.SGD(p, lr=LR, momentum=0.9),
                 lambda: ktk.optimizers.Momentum(LR, 0.9)),
    "nesterov": (lambda t, p: t.optim.SGD(p, lr=LR, momentum=0.9,
                                          nesterov=True),
                 lambda: ktk.optimizers.Momentum(LR, 0.9, nesterov=True)),
    # torch adds eps outside the root: equal at eps = 0
    "adagrad": (lambda t, p: t.optim.Adagrad(p, lr=LR, eps=0.0,
                                             initial_accumulator_value=0.1),
                lambda: ktk.optimizers.Adagrad(
                    LR, epsilon=0.0, initial_accumulator_value=0.1)),
    "rmsprop": (lambda t, p: t.optim.RMSprop(p, lr=LR, alpha=0.9, eps=0.0),
                lambda: ktk.optimizers.RMSProp(
                    LR, rho=0.9, epsilon=0.0, init_with_first_gradient=False)),
    "adam": (lambda t, p: t.optim.Adam(p, lr=LR, eps=0.1),
             lambda: ktk.optimizers.Adam(LR, epsilon=0.1)),
    # (no amsgrad: torch keeps the max of the uncorrected v, the kit the
    # max of the corrected v̂ as API.md says; they differ by design)
    "adamw": (lambda t, p: t.optim.AdamW(p, lr=LR, betas=(0.9, 0.99),
                                         eps=1e-8, weight_decay=0.1),
              lambda: ktk.optimizers.Adam(LR, beta_2=0.99,
                                          weight_decay=0.1)),
}


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_foreach_path_matches_torch_optim(name, foreach_calls):
    import torch

    make_torch, make_kit = TORCH_CASES[name]
    expected = _torch_trajectory(lambda p: make_torch(torch, p))
    assert_same(run_kit(make_kit()), expected, rtol=1e-6)
    assert foreach_calls


def test_fit_takes_the_foreach_path(foreach_calls):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4),
                              keras.layers.Dense(1)])
    model.compile(optimizer=ktk.optimizers.Adam(0.01), loss="mse")
    loss = model.fit(x, y, batch_size=16, epochs=3, verbose=0).history["loss"]
    assert len(foreach_calls) == 12
    assert loss[-1] < loss[0]


def test_subclass_with_its_own_rule_gets_the_plain_path(foreach_calls):
    class HalfSGD(ktk.optimizers.SGD):
        def _rule(self, gradient, variable, slots, learning_rate, step):
            return 0.5 * learning_rate * gradient, ()  # the update

    w = keras.Variable(np.ones(3, "float32"))
    HalfSGD(0.2).apply([keras.ops.ones(3)], [w])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), 0.9, rtol=1e-6)
    assert not foreach_calls

    class Named(ktk.optimizers.Adam):  # same rule: fast path
        pass

    Named(0.1).apply([keras.ops.ones(3)], [w])
    assert foreach_calls


def test_mixed_dtypes_are_grouped(foreach_calls):
    opt = ktk.optimizers.Momentum(0.1, 0.5)
    a = keras.Variable(np.ones(3), dtype="float64")
    b = keras.Variable(np.ones(2), dtype="float32")
    for _ in range(2):
        opt.apply([keras.ops.ones(3, "float64"), keras.ops.ones(2)], [a, b])
    for v in (a, b):  # 1 - 0.1 - (0.5 * 0.1 + 0.1)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), 0.75,
                                   rtol=1e-6)
    assert a.dtype == "float64" and b.dtype == "float32"
