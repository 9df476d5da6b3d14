"""`ktk.diagnosis.probe.Probe` on TensorFlow, against independent numbers.

Gradients are checked against a plain `tf.GradientTape` over the model
and the loss (and against the loss written by hand in NumPy), activation
statistics against the layers run one by one and NumPy. JAX and PyTorch:
`test_probe_backends.py`; `tf.distribute`: `_probe_distribute.py`.
"""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import _probe_models as pm
from keras_training_kit.diagnosis import probe as probe_module
from keras_training_kit.diagnosis.probe import Probe

HERE = os.path.dirname(os.path.abspath(__file__))


def tape_stats(model, x, y, sw=None):
    """(loss, grad_rms per kernel, grads) by a plain tf.GradientTape."""
    kernels = [w for w in model.trainable_weights if w.name == "kernel"]
    with tf.GradientTape() as tape:
        pred = model(x, training=False)
        loss_fn = keras.losses.get(model.loss)
        loss_fn = getattr(loss_fn, "call", loss_fn)  # per example
        per_example = loss_fn(y, pred)
        weights = tf.ones_like(per_example) if sw is None else sw
        # Keras' default reduction: sum over the batch / batch size.
        loss = tf.reduce_sum(per_example * weights) / len(per_example)
        loss += sum(model.losses)
    grads = [g.numpy() for g in tape.gradient(loss, kernels)]
    rms = [float(np.sqrt(np.mean(np.square(g, dtype="float64"))))
           for g in grads]
    return float(loss), rms, grads


def state(model):
    variables = list(model.variables) + list(model.metrics_variables)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    return [(v, np.array(v.numpy())) for v in variables]


def assert_unchanged(saved):
    for variable, value in saved:
        np.testing.assert_array_equal(
            variable.numpy(), value, err_msg=variable.path
        )


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`model` must be a `keras.Model`"):
        Probe(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="gradients"):
        Probe(pm.mlp(), gradients="yes")
    with pytest.raises(ValueError, match="activations"):
        Probe(pm.mlp(), activations=None)


def test_docstring_example_runs():
    keras.backend.clear_session()
    failures, tried = doctest.testmod(probe_module, verbose=False)[:2]
    assert tried >= 5 and failures == 0


def test_mlp_matches_tape_numpy_and_layer_by_layer_outputs():
    model = pm.mlp()
    pm.kill_units(model)
    x, y, sw = pm.data("mlp")
    probe = Probe(model)
    assert probe.layers == ["mlp/relu", "mlp/tanh", "mlp/sigmoid", "mlp/logits"]
    assert probe.monitored == [
        ("relu", "relu"), ("tanh", "tanh"), ("sigmoid", "sigmoid")
    ]
    assert probe.units == {"relu": 24, "tanh": 16, "sigmoid": 12}
    stats = probe(x, y, sw)
    assert probe.notes == []

    loss, grad_rms, _ = tape_stats(model, x, y, sw)
    assert stats["loss"] == pytest.approx(loss, rel=1e-6)
    np.testing.assert_allclose(stats["grad_rms"], grad_rms, rtol=1e-5)
    weights = [w.astype("float64") for w in model.get_weights()]
    by_hand = pm.mlp_reference(
        weights, x, np.eye(10)[y], sw, np.ones((10, 1)), np
    )[0]
    assert stats["loss"] == pytest.approx(by_hand, rel=1e-5)
    np.testing.assert_allclose(
        stats["weight_rms"],
        [np.sqrt(np.mean(w**2)) for w in weights[0::2]], rtol=1e-6,
    )

    acts = pm.numpy_activation_stats(model, x)
    assert acts["dead"]["relu"] >= pm.DEAD / 24  # the check can fail
    assert acts["saturated"]["tanh"] > 0 and acts["saturated"]["sigmoid"] > 0
    for key in ("dead", "active_fraction", "saturated"):
        assert stats[key] == pytest.approx(acts[key], abs=1e-7), key
    assert stats["grad_nonfinite"] == stats["output_nonfinite"] == 0
    assert set(stats["act_nonfinite"].values()) == {0}
    assert set(stats["weight_nonfinite"].values()) == {0}


@pytest.mark.parametrize(
    "loss, labels",
    [
        ("categorical_crossentropy", "one_hot"),
        (keras.losses.CategoricalCrossentropy(from_logits=True), "one_hot"),
        ("sparse_categorical_crossentropy", "sparse"),
    ],
)
def test_loss_equals_evaluate_for_label_formats(loss, labels):
    x, y = pm.digits()
    logits = not isinstance(loss, str)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(10, activation=None if logits else "softmax"),
    ])
    model.compile("adam", loss)
    if labels == "one_hot":
        y = np.eye(10, dtype="float32")[y]
    stats = Probe(model)(x, y)
    evaluated = model.evaluate(x, y, batch_size=len(x), verbose=0)
    assert stats["loss"] == pytest.approx(evaluated, rel=1e-6)
    np.testing.assert_allclose(
        stats["grad_rms"], tape_stats(model, x, y)[1], rtol=1e-5
    )


def test_conv_and_recurrent_models():
    model = pm.conv()
    x, y = pm.conv_data()
    probe = Probe(model)
    stats = probe(x, y)
    assert probe.monitored == [("conv_relu", "relu"), ("conv_elu", "relu")]
    assert probe.units == {"conv_relu": 6, "conv_elu": 4}
    np.testing.assert_allclose(
        stats["grad_rms"], tape_stats(model, x, y)[1], rtol=1e-5
    )
    acts = pm.numpy_activation_stats(model, x)
    assert stats["dead"] == pytest.approx(acts["dead"], abs=1e-7)
    assert stats["active_fraction"] == pytest.approx(
        acts["active_fraction"], abs=1e-7
    )
    assert "conv_elu" not in stats["dead"]  # elu units never die

    model = pm.rnn()
    x, y = pm.rnn_data()
    probe = Probe(model)
    stats = probe(x, y)
    assert probe.layers == [
        "rnn/lstm/lstm_cell", "rnn/gru/gru_cell", "rnn/hidden", "rnn/out"
    ]
    assert probe.monitored == [("hidden", "relu")]  # not LSTM/GRU
    np.testing.assert_allclose(
        stats["grad_rms"], tape_stats(model, x, y)[1], rtol=1e-5
    )


def test_traced_once_and_model_untouched():
    model = pm.mlp()
    x, y, sw = pm.data("mlp")
    model.fit(x, y, epochs=1, verbose=0)  # optimizer and metrics built
    saved = state(model)
    probe = Probe(model)
    first = probe(x, y, sw)
    for _ in range(19):
        assert probe(x, y, sw) == first
    assert probe.traces == 1
    assert probe._fn.experimental_get_tracing_count() == 1  # TF's count
    assert_unchanged(saved)


def test_no_eager_warm_up_once_fit_built_the_compiled_loss(monkeypatch):
    # Once the compiled loss is built (JAX and torch `fit` build it before
    # any callback runs; TF in its first step), a probe only traces its
    # pass (an eager pass costs ~1 s on JAX). A model that was compiled but
    # never fit still gets the eager pass that builds it.
    calls = []
    forward = Probe._forward
    monkeypatch.setattr(Probe, "_forward", lambda self, *a: (
        calls.append(tf.executing_eagerly()), forward(self, *a))[1])
    x, y, sw = pm.data("mlp")
    fresh = pm.mlp()
    fresh.compile(fresh.optimizer, fresh.loss)
    assert Probe(fresh)(x, y, sw) is not None
    assert calls == [True, False]  # the warm-up, then the trace
    calls.clear()
    model = pm.mlp()
    model.fit(x, y, epochs=1, verbose=0)
    seen = []
    model.fit(x, y, epochs=1, verbose=0, callbacks=[
        keras.callbacks.LambdaCallback(on_train_begin=lambda logs: seen.append(
            Probe(model)(x, y, sw)))])
    assert calls == [False] and None not in seen


def test_multi_output_leaves_weights_bn_and_logged_metrics_unchanged():
    x, y, sw = pm.multi_data(256)
    batch = pm.multi_data()
    runs = []
    for with_probe in (False, True):
        keras.utils.set_random_seed(0)
        model = pm.multi_output()
        probe = Probe(model)
        seen = []

        def check(step, logs, probe=probe, model=model, seen=seen):
            saved = state(model)
            seen.append(probe(*batch))
            assert_unchanged(saved)

        cb = keras.callbacks.LambdaCallback(on_train_batch_end=check)
        history = model.fit(
            x, y, sample_weight=sw, batch_size=64, epochs=2, shuffle=False,
            verbose=0, callbacks=[cb] if with_probe else [],
        )
        runs.append(history.history)
    assert set(runs[0]) >= {"cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}
    assert runs[1] == runs[0]
    assert len(seen) == 8 and None not in seen and probe.notes == []
    assert probe.monitored == [("shared", "relu"), ("act", "tanh")]
    assert set(seen[0]["saturated"]) == {"act"}


def test_jit_compiled_model_in_fit():
    x, y, sw = pm.data("mlp")
    runs = []
    for with_probe in (False, True):
        keras.utils.set_random_seed(0)
        model = pm.mlp()
        model.compile(model.optimizer, model.loss, jit_compile=True)
        probe = Probe(model)
        results = []
        cb = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs: results.append(probe(x, y, sw))
        )
        history = model.fit(
            x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
            callbacks=[cb] if with_probe else [],
        )
        runs.append(history.history)
    assert runs[1] == runs[0]
    np.testing.assert_allclose(
        results[-1]["grad_rms"], tape_stats(model, x, y, sw)[1], rtol=1e-5
    )


def test_mixed_precision_statistics_in_float32():
    model = pm.mlp(activity=False)
    x, y, sw = pm.data("mlp")
    reference = Probe(model)(x, y, sw)
    weights = model.get_weights()
    keras.mixed_precision.set_global_policy("mixed_float16")
    mixed = pm.mlp(activity=False)
    mixed.set_weights(weights)
    mixed.fit(x, y, epochs=1, verbose=0)  # builds the loss scale
    mixed.set_weights(weights)
    assert float(mixed.optimizer.scale_loss(1.0)) > 1.0
    stats = Probe(mixed)(x, y, sw)
    assert all(isinstance(r, float) for r in stats["grad_rms"])
    np.testing.assert_allclose(
        stats["grad_rms"], reference["grad_rms"], rtol=2e-2
    )
    assert stats["loss"] == pytest.approx(reference["loss"], rel=1e-2)
    assert stats["grad_nonfinite"] == 0


def test_nonfinite_counts_match_numpy():
    model = pm.mlp()
    x, y = pm.digits()
    kernel = model.get_layer("tanh").kernel
    bad = kernel.numpy()
    bad[0, :3] = [np.nan, np.inf, -np.inf]
    kernel.assign(bad)
    stats = Probe(model)(x, y)
    assert stats["weight_nonfinite"] == {
        "mlp/relu": 0, "mlp/tanh": 3, "mlp/sigmoid": 0, "mlp/logits": 0
    }
    grads = tape_stats(model, x, y)[2]
    assert stats["grad_nonfinite"] == sum(
        int(np.sum(~np.isfinite(g))) for g in grads
    ) > 0
    h, counts = x, {}
    for layer in model.layers:
        h = layer(h).numpy()
        counts[layer.name] = int(np.sum(~np.isfinite(h)))
    assert stats["act_nonfinite"] == {
        k: counts[k] for k in ("relu", "tanh", "sigmoid")
    }
    assert counts["tanh"] > 0
    assert stats["output_nonfinite"] == counts["logits"] > 0


def test_subclassed_model_gradients_without_activations():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.out = keras.layers.Dense(10)

        def call(self, x, training=False):
            return self.out(self.hidden(x))

    model = Net()
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x, y = pm.digits()
    probe = Probe(model)  # not built yet: set up on the first call
    stats = probe(x, y)
    assert len(probe.layers) == 2 and probe.monitored == []
    assert any("Sequential or functional" in n for n in probe.notes)
    np.testing.assert_allclose(
        stats["grad_rms"], tape_stats(model, x, y)[1], rtol=1e-5
    )
    assert stats["dead"] == {} and stats["saturated"] == {}


def test_switches_and_missing_targets():
    model = pm.mlp()
    x, y = pm.digits()
    stats = Probe(model, gradients=False)(x, y)
    assert stats["grad_rms"] == [] and stats["loss"] > 0
    assert len(stats["weight_rms"]) == 4 and "relu" in stats["dead"]
    probe = Probe(model, activations=False)
    assert probe.monitored == [] and probe(x, y)["dead"] == {}
    probe = Probe(model)
    stats = probe(x)
    assert stats["loss"] is None and stats["grad_rms"] == []
    assert "relu" in stats["active_fraction"]
    assert probe.notes == ["gradient probes need targets `y`"]


def test_statistics_problem_returns_none_with_a_note():
    model = pm.mlp()
    x, y = pm.digits()
    probe = Probe(model)
    assert probe(x, np.zeros((len(x), 3, 2))) is None
    assert len(probe.notes) == 1 and "probe failed" in probe.notes[0]
    assert probe(x, y) is None  # stopped: one note, no repeated errors
    assert len(probe.notes) == 1


def test_mirrored_strategy_matches_one_device(tmp_path):
    out = tmp_path / "distribute.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(HERE)), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "_probe_distribute.py"), str(out)],
        env=env, capture_output=True, text=True, timeout=400,
    )
    assert out.exists(), proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert "error" not in result, result["error"]
    assert result["replicas"] == 2
    single = result["single"]
    for key in ("mirrored", "mirrored_in_scope"):
        got = result[key]
        assert got is not None, result["notes"]
        assert got["loss"] == pytest.approx(single["loss"], rel=1e-6), key
        np.testing.assert_allclose(got["grad_rms"], single["grad_rms"],
                                   rtol=1e-5, err_msg=key)
        assert got["dead"] == single["dead"], key
    assert result["fit_logs"][0] == result["fit_logs"][1]
    assert result["fit_probes"] and None not in result["fit_probes"]

