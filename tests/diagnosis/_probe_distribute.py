"""`Probe` of a model built under `tf.distribute.MirroredStrategy`.

Run by `tests/diagnosis/test_probe.py` in a subprocess, because TensorFlow
fixes its logical devices when it starts (as `tests/_distribute_probe.py`
does): splits the CPU into two logical devices, builds the shared MLP
under a two-replica `MirroredStrategy` and the same weights on one device,
and probes both, outside and inside `strategy.scope()`. Also fits the
mirrored model with and without a probe every batch and records the logs.

    python tests/diagnosis/_probe_distribute.py RESULT.json

Writes {"replicas", "single", "mirrored", "mirrored_in_scope", "notes",
"fit_logs", "fit_probes"} (or {"error": traceback}) to RESULT.json.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(2)]
)

import keras  # noqa: E402

import _probe_models as pm  # noqa: E402
from keras_training_kit.diagnosis.probe import Probe  # noqa: E402


def fit_logs(strategy, weights, with_probe):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = pm.mlp()
    model.set_weights(weights)
    x, y = pm.digits(256)
    probe, seen = Probe(model), []
    cb = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append(probe(x[:64], y[:64]))
    )
    history = model.fit(
        x, y, batch_size=64, epochs=2, shuffle=False, verbose=0,
        callbacks=[cb] if with_probe else [],
    )
    return {k: [float(v) for v in h] for k, h in history.history.items()}, seen


def main(path):
    result = {}
    try:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices[:2])
        result["replicas"] = int(strategy.num_replicas_in_sync)
        keras.utils.set_random_seed(0)
        with strategy.scope():
            mirrored = pm.mlp()
        pm.kill_units(mirrored)
        weights = mirrored.get_weights()
        single = pm.mlp()
        single.set_weights(weights)
        x, y, sw = pm.data("mlp")
        result["single"] = Probe(single)(x, y, sw)
        probe = Probe(mirrored)
        result["mirrored"] = probe(x, y, sw)
        inside = Probe(mirrored)
        with strategy.scope():
            result["mirrored_in_scope"] = inside(x, y, sw)
        result["notes"] = probe.notes + inside.notes
        without, _ = fit_logs(strategy, weights, False)
        with_probe, seen = fit_logs(strategy, weights, True)
        result["fit_logs"] = [without, with_probe]
        result["fit_probes"] = seen
    except Exception:  # noqa: BLE001 (reported to the test)
        result["error"] = traceback.format_exc()
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv[1])
