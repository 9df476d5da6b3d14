"""`Probe` on one backend, for `tests/diagnosis/test_probe_backends.py`.

The backend is fixed when Keras is imported, so the test runs this script
in a subprocess with `KERAS_BACKEND` set:

    KERAS_BACKEND=jax python tests/diagnosis/_probe_backend.py DIR OUT.json

For every model of `_probe_models.BUILDERS` it loads `DIR/<name>.weights.h5`
(saved by the TensorFlow test), probes the shared batch, and records the
statistics, how often the pass was traced in 20 calls, and whether any
weight, optimizer or metric variable moved. For the MLP it also records
an independent gradient: the loss written by hand in the backend's own
array library, differentiated by `jax.grad` or torch autograd. Writes
JSON to OUT.json (also on failure: the traceback is under "error").
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _probe_models as pm  # noqa: E402
from keras_training_kit.diagnosis.probe import Probe  # noqa: E402

BACKEND = keras.backend.backend()


def state(model):
    """Every variable of the model, its optimizer and metrics, by id."""
    variables = list(model.variables) + list(model.metrics_variables)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    return {id(v): np.array(keras.ops.convert_to_numpy(v)) for v in variables}


def same(a, b):
    """Two probe results equal to float32 round-off."""
    if a is None or b is None or set(a) != set(b):
        return False
    for key, value in a.items():
        got = b[key]
        if isinstance(value, dict):
            if set(value) != set(got):
                return False
            value, got = list(value.values()), [got[k] for k in value]
        if value is None or got is None:
            if value is not got:
                return False
            continue
        if not np.allclose(np.asarray(value, float), np.asarray(got, float),
                           rtol=1e-5, atol=1e-7):
            return False
    return True


def unchanged(before, after):
    """No variable moved; the ones created since (the compiled loss's
    metrics, built on first use as `fit` would) are still at zero."""
    return all(
        np.array_equal(before[k], a) if k in before else not np.any(a)
        for k, a in after.items()
    ) and set(before) <= set(after)


def probe_model(name, directory, **kwargs):
    keras.utils.set_random_seed(0)
    model = pm.BUILDERS[name](**kwargs)
    model.load_weights(os.path.join(directory, f"{name}.weights.h5"))
    x, y, sw = pm.data(name)
    before = state(model)
    probe = Probe(model)
    stats = [probe(x, y, sw) for _ in range(20)]
    after = state(model)
    return model, probe, {
        "stats": stats[0],
        # JAX runs the first call op by op while XLA compiles in the
        # background: equal to float32 round-off, not bit for bit.
        "repeat_equal": all(same(s, stats[0]) for s in stats),
        "traces": probe.traces,
        "notes": probe.notes,
        "layers": probe.layers,
        "monitored": probe.monitored,
        "units": probe.units,
        "unchanged": unchanged(before, after),
    }


def independent_mlp(model):
    """(loss, grad_rms per kernel) from the hand-written loss."""
    x, y, sw = pm.data("mlp")
    onehot = np.eye(10, dtype="float32")[y]
    ones = np.ones((10, 1), "float32")
    weights = [np.array(w) for w in model.get_weights()]
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def loss_fn(ws):
            return pm.mlp_reference(ws, x, onehot, sw, ones, jnp)[0]

        loss, grads = jax.value_and_grad(loss_fn)(
            [jnp.asarray(w) for w in weights]
        )
        grads = [np.asarray(g) for g in grads]
    else:
        import torch

        ws = [torch.tensor(w, requires_grad=True) for w in weights]
        loss = pm.mlp_reference(
            ws, *(torch.tensor(a) for a in (x, onehot, sw, ones)), torch
        )[0]
        grads = [g.numpy() for g in torch.autograd.grad(loss, ws)]
        loss = loss.detach()
    kernels = grads[0::2]
    return float(loss), [float(np.sqrt(np.mean(g**2))) for g in kernels]


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(10)

    def call(self, x, training=False):
        return self.out(self.hidden(x))


def untouched_during_fit():
    """Whether any variable moved across a probe call in the middle of
    `fit` (the JAX trainer detaches its state mid-epoch), batch by batch."""
    x, y, sw = pm.multi_data(192)
    batch = pm.multi_data()
    keras.utils.set_random_seed(0)
    model = pm.multi_output()
    probe, checks = Probe(model), []

    def check(step, logs):
        if hasattr(model, "jax_state_sync"):
            model.jax_state_sync()
        before = state(model)
        checks.append(probe(*batch) is not None)
        checks.append(unchanged(before, state(model)))

    model.fit(
        x, y, sample_weight=sw, batch_size=64, epochs=1, verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=check)],
    )
    return checks, probe.notes


def main(directory, out):
    result = {"backend": BACKEND, "models": {}, "seconds": {}}
    clock = time.perf_counter()

    def lap(what):
        nonlocal clock
        result["seconds"][what] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    try:
        for name in pm.BUILDERS:
            model, _, record = probe_model(name, directory)
            result["models"][name] = record
            if name == "mlp":
                result["independent"] = independent_mlp(model)
                x = pm.digits()[0]
                result["numpy_acts"] = pm.numpy_activation_stats(model, x)
            lap(name)
        keras.utils.set_random_seed(0)
        sub = Subclassed()
        sub.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
        x, y, _ = pm.data("mlp")
        probe = Probe(sub)
        result["subclassed"] = {"stats": probe(x, y), "notes": probe.notes}
        lap("subclassed")
        result["fit_checks"], result["fit_notes"] = untouched_during_fit()
        lap("fit")
        keras.mixed_precision.set_global_policy("mixed_float16")
        _, _, record = probe_model("mlp", directory, activity=False)
        result["mixed"] = record
        lap("mixed")
    except Exception:  # noqa: BLE001 (reported to the test)
        result["error"] = traceback.format_exc()
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
