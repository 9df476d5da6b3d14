"""`Probe` on JAX and PyTorch: the same statistics as on TensorFlow.

The backend is fixed at import, so each backend runs
`tests/diagnosis/_probe_backend.py` in a subprocess. The models are built
and saved here on TensorFlow (weights in a `.weights.h5` file), loaded
there, and the statistics compared to float32 tolerance; the MLP's
gradients are also checked against the loss written by hand in the
backend's own library (`jax.grad`, torch autograd).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import _probe_models as pm
from keras_training_kit.diagnosis.probe import Probe

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "_probe_backend.py")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """TensorFlow statistics of every shared model, and its saved weights."""
    import keras

    directory = tmp_path_factory.mktemp("probe_weights")
    stats = {}
    for name, build in pm.BUILDERS.items():
        keras.utils.set_random_seed(0)
        model = build()
        if name == "mlp":
            pm.kill_units(model)
        model.save_weights(os.path.join(directory, f"{name}.weights.h5"))
        stats[name] = Probe(model)(*pm.data(name))
    plain = pm.mlp(activity=False)  # the mixed-precision reference
    plain.load_weights(os.path.join(directory, "mlp.weights.h5"))
    stats["mlp_plain"] = Probe(plain)(*pm.data("mlp"))
    return str(directory), stats


def run_backend(backend, directory, tmp_path):
    out = tmp_path / f"{backend}.json"
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(HERE)), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, SCRIPT, directory, str(out)],
        env=env, capture_output=True, text=True, timeout=400,
    )
    assert out.exists(), proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert "error" not in result, result["error"]
    assert result["backend"] == backend
    return result


def assert_same_stats(ours, ref, where):
    """Two probe results equal to float32 tolerance."""
    assert ours is not None and ref is not None, where
    assert set(ours) == set(ref), where
    for key, value in ref.items():
        got = ours[key]
        if isinstance(value, dict):
            assert set(got) == set(value), (where, key)
            got, value = [got[k] for k in value], list(value.values())
        np.testing.assert_allclose(
            np.asarray(got, float), np.asarray(value, float),
            rtol=2e-4, atol=1e-6, err_msg=f"{where}: {key}",
        )


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_matches_tensorflow_and_its_own_autodiff(
    backend, saved, tmp_path
):
    directory, reference = saved
    result = run_backend(backend, directory, tmp_path)

    for name, record in result["models"].items():
        where = f"{backend}/{name}"
        assert record["notes"] == [], where
        assert_same_stats(record["stats"], reference[name], where)
        assert record["repeat_equal"], where
        assert record["unchanged"], f"{where}: the probe changed the model"
        # Compiled once: 20 calls, one trace (PyTorch runs eagerly).
        assert record["traces"] == (1 if backend == "jax" else 0), where

    mlp = result["models"]["mlp"]["stats"]
    loss, grad_rms = result["independent"]
    np.testing.assert_allclose(mlp["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(mlp["grad_rms"], grad_rms, rtol=1e-4)
    acts = result["numpy_acts"]
    assert acts["dead"]["relu"] >= pm.DEAD / 24  # the test can fail
    for key in ("dead", "active_fraction", "saturated"):
        for layer, value in acts[key].items():
            assert mlp[key][layer] == pytest.approx(value, abs=1e-6), key
    assert acts["saturated"]["tanh"] > 0 and acts["saturated"]["sigmoid"] > 0

    rnn = result["models"]["rnn"]
    assert rnn["layers"] == [
        "rnn/lstm/lstm_cell", "rnn/gru/gru_cell", "rnn/hidden", "rnn/out"
    ]
    assert rnn["monitored"] == [["hidden", "relu"]]
    conv = result["models"]["conv"]
    assert conv["monitored"] == [["conv_relu", "relu"], ["conv_elu", "relu"]]
    assert set(conv["stats"]["dead"]) == {"conv_relu"}  # elu is never dead

    sub = result["subclassed"]
    assert len(sub["stats"]["grad_rms"]) == 2
    assert sub["stats"]["dead"] == {}
    assert any("Sequential or functional" in n for n in sub["notes"])

    # Mid-`fit`, batch by batch: the probe worked and moved no variable.
    assert result["fit_checks"] == [True] * 6, result["fit_notes"]

    mixed = result["mixed"]
    assert mixed["unchanged"]
    assert mixed["stats"]["grad_nonfinite"] == 0
    np.testing.assert_allclose(
        mixed["stats"]["grad_rms"], reference["mlp_plain"]["grad_rms"],
        rtol=2e-2,
    )
