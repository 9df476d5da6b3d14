"""JAX-only checks, run by `test_backend_matrix.py` with KERAS_BACKEND=jax.

- The kit's optimizers compile into the jitted train step once: over 20
  steps of `fit` (two epochs) the train step is traced exactly once.
- Their update holds no host callback (no `pure_callback`/`io_callback`:
  nothing waits on the host inside the step) and no Python-side periodic
  logic (the trace is the same whatever the step number).
- `set_compiled_updates(True)` raises (there is no separate path on JAX).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="run with KERAS_BACKEND=jax"
)

OPTIMIZERS = {
    "SGD": lambda: ktk.optimizers.SGD(0.01),
    "Momentum": lambda: ktk.optimizers.Momentum(0.01, 0.9),
    "Momentum(ema,nesterov)": lambda: ktk.optimizers.Momentum(
        0.05, 0.9, ema=True, nesterov=True
    ),
    "Adagrad": lambda: ktk.optimizers.Adagrad(0.05),
    "RMSProp": lambda: ktk.optimizers.RMSProp(0.01),
    "Adam": lambda: ktk.optimizers.Adam(0.01),
    "Adam(amsgrad)": lambda: ktk.optimizers.Adam(0.01, amsgrad=True),
    "Adam(schedule)": lambda: ktk.optimizers.Adam(
        ktk.schedules.StepDecay(0.01, factor=0.5, every=3)
    ),
}


def test_backend_is_jax():
    assert keras.backend.backend() == "jax"


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_train_step_traced_once_over_20_steps(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(1)]
    )
    model.compile(optimizer=OPTIMIZERS[name](), loss="mse", jit_compile=True)
    traces = []
    train_step = model.train_step

    def counting_train_step(*args, **kwargs):
        traces.append(1)  # Python runs here only while JAX traces
        return train_step(*args, **kwargs)

    model.train_step = counting_train_step
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False,
                        verbose=0)
    assert int(model.optimizer.iterations) == 20
    assert len(traces) == 1, f"{name}: traced {len(traces)} times"
    loss = history.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < loss[0], loss


CALLBACKS = {"pure_callback", "io_callback", "debug_callback", "callback"}


def _primitives(jaxpr):
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                names |= _primitives(inner)
    return names


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_update_has_no_host_callback_and_one_trace_for_all_steps(name):
    import jax

    optimizer = OPTIMIZERS[name]()
    variables = [keras.Variable(np.ones((4, 3), "float32")),
                 keras.Variable(np.ones((3,), "float32"))]
    optimizer.build(variables)
    grads = [np.full((4, 3), 0.5, "float32"), np.full((3,), -0.5, "float32")]

    def step(optimizer_values, gradients, trainable_values):
        return optimizer.stateless_apply(
            optimizer_values, gradients, trainable_values
        )

    args = ([v.value for v in optimizer.variables], grads,
            [v.value for v in variables])
    closed = jax.make_jaxpr(step)(*args)
    found = _primitives(closed.jaxpr) & CALLBACKS
    assert not found, f"{name}: host callbacks {found} in the update"
    # The same compiled function serves every step: no retracing although
    # `iterations` (and so the bias corrections, schedule) changes.
    jitted = jax.jit(step)
    values, trainable = args[0], args[2]
    for _ in range(5):
        trainable, values = jitted(values, grads, trainable)
    assert jitted._cache_size() == 1
    index = [v.path for v in optimizer.variables].index(
        optimizer.iterations.path
    )
    assert int(values[index]) == 5


def test_set_compiled_updates_true_raises_on_jax():
    assert not ktk.optimizers.compiled_updates_enabled()
    with pytest.raises(ValueError, match="`enabled`.*Received: enabled=True"):
        ktk.optimizers.set_compiled_updates(True)
    ktk.optimizers.set_compiled_updates(False)  # allowed: it is off
    assert not ktk.optimizers.compiled_updates_enabled()
