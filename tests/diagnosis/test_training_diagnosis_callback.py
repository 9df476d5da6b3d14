"""TrainingDiagnosis: hooks driven with synthetic logs, probe batches from
every kind of training data, the record, TensorBoard text, JSON, HTML,
stop_on, arguments."""

import base64
import glob
import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_training_kit as ktk
from keras_training_kit.callbacks import TrainingDiagnosis

L = keras.layers


def small_model(bias=0.0):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            L.Dense(16, activation="relu", bias_initializer=
                    keras.initializers.Constant(bias)),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def drive(diag, epochs_of_batches, val_losses=None):
    """Calls the hooks like Keras 3 does: batch logs hold running means."""
    diag.set_params({"epochs": len(epochs_of_batches), "steps": 10})
    with pytest.warns(UserWarning, match="no probe batch"):
        diag.on_train_begin()
    for epoch, losses in enumerate(epochs_of_batches):
        diag.on_epoch_begin(epoch)
        running = np.cumsum(losses) / np.arange(1, len(losses) + 1)
        for batch, mean in enumerate(running):
            diag.on_train_batch_end(batch, {"loss": float(mean)})
        logs = {"loss": float(np.mean(losses))}
        if val_losses is not None:
            logs["val_loss"] = val_losses[epoch]
        diag.on_epoch_end(epoch, logs)
        if diag.model.stop_training:
            break
    diag.on_train_end()


def test_hooks_recover_batch_losses_and_diagnose_overfitting():
    diag = TrainingDiagnosis(verbose=0, stop_on=())
    diag.set_model(small_model())
    rng = np.random.default_rng(0)
    batches = [list(rng.uniform(0.9, 1.1, 10) * 0.7**e) for e in range(8)]
    val = [1.0, 0.8, 0.7, 0.65, 0.75, 0.85, 0.95, 1.05]
    drive(diag, batches, val)
    np.testing.assert_allclose(diag.record.batch_losses, batches, rtol=1e-5)
    assert diag.record.initial_loss == pytest.approx(batches[0][0])
    assert [f.code for f in diag.findings] == ["overfitting"]
    assert diag.findings[0].epoch == 4
    assert "no probe batch" in diag.report()


def test_stop_on_other_codes_stops_fit():
    diag = TrainingDiagnosis(verbose=0, stop_on=("overfitting",))
    diag.set_model(small_model())
    batches = [[0.5**e] * 10 for e in range(10)]
    val = [1.0, 0.8, 0.7, 0.65, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]
    drive(diag, batches, val)
    assert diag.model.stop_training
    assert len(diag.history["loss"]) == 6


def test_stop_on_diverged_at_the_batch(capsys):
    diag = TrainingDiagnosis(verbose=1)
    diag.set_model(small_model())
    diag.set_params({"epochs": 2, "steps": 10})
    with pytest.warns(UserWarning):
        diag.on_train_begin()
    diag.on_epoch_begin(0)
    diag.on_train_batch_end(0, {"loss": 2.3})
    diag.on_train_batch_end(1, {"loss": float("nan")})
    assert diag.model.stop_training
    assert "stopping on `diverged`" in capsys.readouterr().out


@pytest.mark.parametrize(
    "source", ["numpy", "tf.data", "generator", "explicit", "functional"]
)
def test_probe_batch_from_any_training_data(digits, source):
    (x, y), _ = digits
    model = small_model(bias=-10.0)  # all ReLU units dead
    data = None
    if source == "functional":
        inp = keras.Input((64,))
        hid = L.Dense(
            16,
            activation="relu",
            bias_initializer=keras.initializers.Constant(-10.0),
            name="hidden",
        )(inp)
        model = keras.Model(inp, L.Dense(10, activation="softmax")(hid))
        model.compile("adam", "sparse_categorical_crossentropy")
    if source == "explicit":
        data = (x[:50], y[:50])
    diag = TrainingDiagnosis(data=data, verbose=0, every=10)
    kw = {"epochs": 2, "verbose": 0, "callbacks": [diag]}
    if source in ("tf.data", "generator"):
        kw["shuffle"] = False
    if source == "tf.data":
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), **kw)
    elif source == "generator":

        def gen():
            while True:
                for i in range(0, len(x) - 32, 32):
                    yield x[i : i + 32], y[i : i + 32]

        model.fit(gen(), steps_per_epoch=40, **kw)
    else:
        model.fit(x, y, batch_size=32, **kw)
    assert diag.findings.root_cause.code == "dead_units"
    assert diag.findings[0].evidence["fraction"] == 1.0
    rec = diag.record
    assert rec.inputs is not None
    assert rec.baseline_loss == pytest.approx(2.3, abs=0.15)
    steps = [p["step"] for p in rec.probes]
    assert steps[:3] == [0, 10, 20]  # before training, then every 10
    assert all(p["grad_rms"] for p in rec.probes)


def test_automatic_every_probes_twice_per_epoch(digits):
    (x, y), _ = digits
    diag = TrainingDiagnosis(verbose=0)
    small_model().fit(x, y, batch_size=100, epochs=2, verbose=0,
                      callbacks=[diag])
    steps = [p["step"] for p in diag.record.probes]  # 15 per epoch, every 7
    assert steps == [0, 7, 14, 21, 28]
    per_epoch = np.bincount(np.maximum(np.array(steps) - 1, 0) // 15)
    assert (per_epoch >= 2).all()


def test_update_ratio_is_the_next_steps_weight_change(digits):
    (x, y), _ = digits
    model = small_model()
    lr = 0.05
    model.compile(ktk.optimizers.SGD(lr), "sparse_categorical_crossentropy")
    before = model.layers[0].kernel.numpy().copy()
    diag = TrainingDiagnosis(data=(x[:64], y[:64]), verbose=0, every=1000)
    model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0,
              shuffle=False, callbacks=[diag])
    probe = diag.record.probes[0]
    # The first probe runs before training; its ratio is over step 1.
    assert probe["step"] == 0
    ratio = probe["update_ratio"]["sequential/dense"]
    assert 0 < ratio < 1
    assert diag.record.learning_rates == [pytest.approx(lr)]
    assert np.abs(model.layers[0].kernel.numpy() - before).max() > 0


def test_tensorboard_text_json_html_and_report(digits, tmp_path):
    (x, y), val = digits
    tb = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))
    diag = TrainingDiagnosis(verbose=0)
    small_model().fit(x, y, validation_data=val, epochs=2, verbose=0,
                      callbacks=[tb, diag])
    files = glob.glob(str(tmp_path / "logs" / "diagnosis" / "events.*"))
    tags = set()
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.add(value.tag)
    assert "training_diagnosis" in tags
    data = json.loads(diag.to_json())
    assert data["findings"][0]["code"] in ktk.diagnosis.CODES
    assert len(data["record"]["logs"]) == 2
    assert data["record"]["layers"] == [
        "sequential/dense",
        "sequential/dense_1",
    ]
    assert diag.report().startswith("Training diagnosis")
    page = open(diag.to_html(tmp_path / "d.html"), encoding="utf-8").read()
    assert "http://" not in page and "https://" not in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert images and all(
        base64.b64decode(i).startswith(b"\x89PNG") for i in images
    )


def test_diagnose_from_history_equals_curve_findings(digits):
    (x, y), val = digits
    diag = TrainingDiagnosis(verbose=0)
    history = small_model().fit(x, y, validation_data=val, epochs=3,
                                verbose=0, callbacks=[diag])
    offline = ktk.diagnosis.diagnose(history)
    assert [f.code for f in offline] == ["healthy"]
    assert diag.history["loss"] == pytest.approx(history.history["loss"])


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="`every`"):
        TrainingDiagnosis(every=0)
    with pytest.raises(ValueError, match="`stop_on`"):
        TrainingDiagnosis(stop_on=("bored",))
    with pytest.raises(ValueError, match="`verbose`"):
        TrainingDiagnosis(verbose=5)
    with pytest.raises(ValueError, match="`data`"):
        TrainingDiagnosis(data=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="`gradients`"):
        TrainingDiagnosis(gradients="yes")


def test_config_round_trip():
    diag = TrainingDiagnosis(every=3, stop_on=("diverged", "overfitting"),
                             verbose=0, activations=False)
    config = diag.get_config()
    assert set(config) == {"data", "gradients", "activations", "every",
                           "stop_on", "verbose"}
    clone = TrainingDiagnosis.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(diag)
    )
    assert isinstance(restored, TrainingDiagnosis)
    assert restored.stop_on == ("diverged", "overfitting")


def test_probes_under_strategy_mixed_precision_and_jit(digits):
    (x, y), _ = digits
    keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = small_model(bias=-10.0)
        model.compile("adam", "sparse_categorical_crossentropy",
                      jit_compile=True)
    diag = TrainingDiagnosis(verbose=0)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[diag])
    assert not [n for n in diag.record.notes if "probes" in n]
    assert len(diag.record.probes) == 3  # steps 0, 22, 44
    assert diag.findings.root_cause.code == "dead_units"


def test_nan_input_row_is_named_and_best_weights_kept(digits):
    (x, y), val = digits
    x = x.copy()
    x[7, 5] = np.nan
    model = small_model()
    diag = TrainingDiagnosis(verbose=0)
    model.fit(x, y, validation_data=val, epochs=3, verbose=0,
              callbacks=[diag])
    root = diag.findings.root_cause
    assert root.code == "diverged" and root.severity == "error"
    assert "1 rows" in root.evidence["cause"]
    assert all(np.isfinite(w).all() for w in model.get_weights())
