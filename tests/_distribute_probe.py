"""Every registered object under `tf.distribute.MirroredStrategy`.

Run by `tests/test_conformance.py` in a subprocess, because TensorFlow fixes
its logical devices when it starts: this script splits the CPU into two
logical devices, then, for every registered optimizer, schedule,
regularizer and layer, runs a short `fit` under a two-replica
`MirroredStrategy`. For optimizers, schedules and regularizers (whose math
is deterministic) it also runs the same `fit` on one device, from the same
initial weights, and records how far the two results are apart: the
replicas' averaged gradients must give the single-device update.

    python tests/_distribute_probe.py RESULT.json [KIND/NAME ...]

probes the named entries (all of them when none is named) and writes
{"kind/name": {"kind", "name", "ok", "error", "replicas", "loss",
"max_weight_diff"}} atomically to RESULT.json (also when it fails).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu,
    [tf.config.LogicalDeviceConfiguration() for _ in range(2)],
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit  # noqa: E402,F401
from keras_training_kit._registry import entries  # noqa: E402

KINDS = ("optimizer", "schedule", "regularizer", "layer")
DETERMINISTIC = ("optimizer", "schedule", "regularizer")
BATCH, EPOCHS = 32, 2  # 64 samples: 2 updates per epoch, 16 per replica


def build(entry):
    """A small model using the entry, its data and its optimizer."""
    rng = np.random.default_rng(0)
    shape = tuple(entry.info.get("input_shape", (8,)))
    x = rng.normal(size=(64, *shape)).astype("float32")
    y = x.reshape(64, -1).sum(axis=1, keepdims=True).astype("float32")
    kernel_regularizer, optimizer = None, None
    if entry.kind == "optimizer":
        optimizer = entry.make()
    elif entry.kind == "schedule":
        optimizer = keras.optimizers.SGD(learning_rate=entry.make())
    elif entry.kind == "regularizer":
        kernel_regularizer = entry.make()
    inputs = keras.Input(shape)
    h = entry.make()(inputs) if entry.kind == "layer" else inputs
    if len(h.shape) > 2:
        h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(1, kernel_regularizer=kernel_regularizer)(h)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.01),
        loss="mse",
        jit_compile=False,
    )
    return model, x, y


def train(model, x, y):
    history = model.fit(
        x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0
    )
    return [float(v) for v in history.history["loss"]]


def probe(entry, strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model, x, y = build(entry)
    initial = model.get_weights()
    record = {
        "replicas": int(strategy.num_replicas_in_sync),
        "loss": train(model, x, y),
        "max_weight_diff": None,
    }
    if entry.kind in DETERMINISTIC:
        keras.utils.set_random_seed(0)
        single, x, y = build(entry)
        single.set_weights(initial)
        train(single, x, y)
        record["max_weight_diff"] = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(model.get_weights(), single.get_weights())
        )
    finite = bool(np.all(np.isfinite(record["loss"])))
    close = record["max_weight_diff"] is None or (
        record["max_weight_diff"] < 1e-4
    )
    record["ok"] = finite and close
    record["error"] = (
        None
        if record["ok"]
        else f"loss finite: {finite}; weights differ from one device by "
        f"{record['max_weight_diff']}"
    )
    return record


def main(path: str, only: list[str]) -> int:
    results = {}
    status = 0
    try:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices[:2])
        for kind in KINDS:
            for entry in entries(kind):
                if "test_distribute" in entry.info.get("skip", ()):
                    continue
                if only and f"{kind}/{entry.name}" not in only:
                    continue
                keras.backend.clear_session()
                base = {"kind": kind, "name": entry.name}
                try:
                    results[f"{kind}/{entry.name}"] = {
                        **base, **probe(entry, strategy)
                    }
                except Exception:  # noqa: BLE001 (reported to the test)
                    results[f"{kind}/{entry.name}"] = {
                        **base, "ok": False, "replicas": None, "loss": [],
                        "error": traceback.format_exc(limit=6),
                    }
    except Exception:  # noqa: BLE001
        results["__probe__"] = {"ok": False, "error": traceback.format_exc()}
        status = 1
    finally:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(results, f)
        os.replace(tmp, path)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
