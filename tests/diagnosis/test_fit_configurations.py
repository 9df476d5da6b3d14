"""`TrainingDiagnosis` under every `fit` configuration (issue 8, section 2).

Each test trains a small healthy model in one configuration with
`TrainingDiagnosis()` and asserts that `fit` completes and that the
diagnosis stays silent (no warning, no error): nothing may be invented
from a missing value (epochs without validation, a multi-step execution,
a later first epoch, several outputs, weights, generators...). Two faulty
checks follow the issue: `validation_freq` never yields `diverged`, and a
NaN in one training row yields `diverged`, names the NaN inputs and keeps
finite weights.

The healthy runs are chosen so that they really are healthy: the
validation error ends far below the constant predictor's (checked in each
test with `_learned`, independently of the diagnosis).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits, make_blobs

import keras_training_kit as ktk
from _on_backend import on


@pytest.fixture(scope="module")
def small():
    return _small()


def _small():
    """400 train / 200 validation standardized digits (10 classes)."""
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))[:600]
    x, y = x[idx], y[idx].astype("int32")
    mean, std = x[:400].mean(0), x[:400].std(0) + 1e-6
    x = ((x - mean) / std).astype("float32")
    return (x[:400], y[:400]), (x[400:], y[400:])


def _mlp(out_act="softmax", loss="sparse_categorical_crossentropy",
         lr=3e-3, **compile_kw):
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation=out_act),
    ])
    model.compile(keras.optimizers.Adam(lr), loss, **compile_kw)
    return model


def _problems(diag) -> list:
    return [f for f in diag.findings if f.severity in ("warning", "error")]


def _assert_silent(diag) -> None:
    problems = _problems(diag)
    assert not problems, "\n".join(str(f) for f in problems)


def _learned(model, xv, yv, at_most=0.2) -> None:
    """The run is really healthy: validation error well below chance (0.9)."""
    pred = model.predict(xv, verbose=0)
    if isinstance(pred, dict):
        pred = pred["cls"]
    err = float(np.mean(np.argmax(pred, -1) != yv))
    assert err <= at_most, err


def _fit(model, *args, **kw):
    diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
    kw.setdefault("epochs", 8)
    kw.setdefault("verbose", 0)
    model.fit(*args, callbacks=[diag], **kw)
    return diag


def test_validation_freq(small):
    (x, y), (xv, yv) = small
    model = _mlp()
    diag = _fit(model, x, y, validation_data=(xv, yv), validation_freq=2)
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_validation_freq_is_never_diverged(small):
    (x, y), (xv, yv) = small
    model = _mlp()
    diag = _fit(model, x, y, validation_data=(xv, yv), validation_freq=3,
                epochs=7)
    assert "diverged" not in [f.code for f in diag.findings]
    assert model.history.history["loss"][-1] < model.history.history[
        "loss"][0]


def test_steps_per_execution(small):
    (x, y), (xv, yv) = small
    model = _mlp(steps_per_execution=4)
    diag = _fit(model, x, y, validation_data=(xv, yv))
    _assert_silent(diag)
    _learned(model, xv, yv)


def _on(backend: str, name: str):
    return on(backend, "test_fit_configurations", name)


def transformer_run() -> dict:
    """A one-block Transformer classifier (token embedding, attention,
    residuals, layer norm) on a counting task it learns perfectly."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    seq = rng.integers(3, 50, size=(1500, 20)).astype("int32")
    count = (seq < 25).sum(1)
    y = (count > np.median(count)).astype("int32")
    inp = keras.Input((20,), dtype="int32")
    e = keras.layers.Embedding(50, 32)(inp)
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16)(e, e)
    h = keras.layers.LayerNormalization()(e + a)
    f = keras.layers.Dense(32)(keras.layers.Dense(64, activation="relu")(h))
    h = keras.layers.LayerNormalization()(h + f)
    pooled = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(
        pooled))
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy",
                  metrics=["accuracy"])
    diag = _fit(model, seq, y, validation_split=0.2, epochs=10)
    return {"codes": [f.code for f in _problems(diag)],
            "val_accuracy": model.history.history["val_accuracy"][-1]}


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_transformer_that_fits_is_silent(backend):
    """Its first kernel (attention's query) gets gradients ~1e-4 of the
    head's once it fits: not a vanishing-gradient problem (was a false
    alarm on JAX and PyTorch)."""
    run = _on(backend, "transformer_run")
    assert run["val_accuracy"] >= 0.98  # independently: it learned
    assert run["codes"] == [], run["codes"]


def spe_codes() -> dict:
    """SGD at a rate of 10 (it wrecks the net in its first batches) with
    1 and 4 batches per execution: the problem codes of each run."""
    (x, y), (xv, yv) = _small()
    found = {}
    for spe in (1, 4):
        keras.utils.set_random_seed(0)
        model = _mlp(steps_per_execution=spe)
        model.compile(keras.optimizers.SGD(10.0),
                      "sparse_categorical_crossentropy",
                      steps_per_execution=spe)
        diag = _fit(model, x, y, validation_data=(xv, yv))
        loss = model.history.history["loss"][-1]
        found[spe] = {
            "codes": [f.code for f in _problems(diag)],
            # independently: the run is broken (NaN, or worse than chance)
            "broken": bool(not np.isfinite(loss) or loss > np.log(10)),
        }
    return found


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_steps_per_execution_sees_what_single_steps_see(backend):
    """With 4 batches per execution the logged first value already
    averages the climb; the diagnosis must still name the fault that one
    batch per step shows (PyTorch has no `steps_per_execution`)."""
    found = {int(k): v for k, v in _on(backend, "spe_codes").items()}
    assert found[1]["broken"] and found[4]["broken"]
    assert found[4]["codes"] == found[1]["codes"]
    assert found[1]["codes"][0] in ("diverged", "lr_too_high")


def test_initial_epoch(small):
    (x, y), (xv, yv) = small
    model = _mlp()
    diag = _fit(model, x, y, validation_data=(xv, yv), initial_epoch=2,
                epochs=10)
    _assert_silent(diag)
    for f in diag.findings:  # epochs are those Keras reports: 2..9
        assert f.epoch is None or 2 <= f.epoch <= 9, f
    _learned(model, xv, yv)


def test_multi_output(small):
    (x, y), (xv, yv) = small
    inp = keras.Input((64,))
    h = keras.layers.Dense(64, activation="relu")(inp)
    cls = keras.layers.Dense(10, activation="softmax", name="cls")(h)
    reg = keras.layers.Dense(1, name="reg")(h)
    model = keras.Model(inp, {"cls": cls, "reg": reg})
    model.compile(
        keras.optimizers.Adam(3e-3),
        loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
    )

    def targets(xs, ys):  # the second head predicts the mean pixel value
        return {"cls": ys, "reg": xs.mean(axis=1, keepdims=True)}

    diag = _fit(model, x, targets(x, y),
                validation_data=(xv, targets(xv, yv)))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_sample_weight(small):
    (x, y), (xv, yv) = small
    w = np.random.default_rng(1).uniform(0.5, 1.5, len(x)).astype("float32")
    model = _mlp()
    diag = _fit(model, x, y, sample_weight=w, validation_data=(xv, yv))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_class_weight(small):
    (x, y), (xv, yv) = small
    model = _mlp()
    weights = {c: (2.0 if c % 2 else 1.0) for c in range(10)}
    diag = _fit(model, x, y, class_weight=weights,
                validation_data=(xv, yv))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_tf_data_dataset(small):
    (x, y), (xv, yv) = small
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        400, seed=0).batch(32)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(64)
    model = _mlp()
    diag = _fit(model, train, validation_data=val)
    _assert_silent(diag)
    _learned(model, xv, yv)


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size=32, **kw):
        super().__init__(**kw)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]


def test_py_dataset(small):
    (x, y), (xv, yv) = small
    model = _mlp()
    diag = _fit(model, _Batches(x, y), validation_data=_Batches(xv, yv))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_python_generator_with_steps_per_epoch(small):
    (x, y), (xv, yv) = small

    def forever():
        rng = np.random.default_rng(0)
        while True:
            idx = rng.choice(len(x), 32, replace=False)
            yield x[idx], y[idx]

    model = _mlp()
    diag = _fit(model, forever(), steps_per_epoch=12,
                validation_data=(xv, yv))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_validation_split(small):
    (x, y), (xv, yv) = small
    model = _mlp()
    diag = _fit(model, x, y, validation_split=0.2)
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_validation_split_rows_are_not_read_as_training_rows(small):
    """The input statistics (and the k-NN yardstick) sample the rows Keras
    trains on (`fit` has split its arrays when the callbacks start):
    validation rows on a wild scale are not `unscaled_inputs`."""
    (x, y), (xv, yv) = small
    xs = np.concatenate([x, 1000.0 * xv]).astype("float32")
    ys = np.concatenate([y, yv])
    split = len(xv) / len(xs)
    diag = _fit(_mlp(), xs, ys, validation_split=split, epochs=3)
    assert "unscaled_inputs" not in [f.code for f in _problems(diag)]
    assert diag.record.inputs["rows"] <= len(x)
    assert max(diag.record.inputs["std"]) < 5


class SubclassedNet(keras.Model):  # a leading "_" is no valid Keras name
    def __init__(self, **kw):
        super().__init__(**kw)
        self.hidden = keras.layers.Dense(64, activation="relu")
        self.out = keras.layers.Dense(10, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def test_subclassed_model(small):
    (x, y), (xv, yv) = small
    model = SubclassedNet()
    model.compile(keras.optimizers.Adam(3e-3),
                  "sparse_categorical_crossentropy")
    diag = _fit(model, x, y, validation_data=(xv, yv))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_lstm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(480, 10, 2)).astype("float32")
    y = (x[:, :3, 0].sum(axis=1) > 0).astype("float32")
    model = keras.Sequential([
        keras.Input((10, 2)),
        keras.layers.LSTM(16),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    diag = _fit(model, x[:360], y[:360], validation_data=(x[360:], y[360:]),
                epochs=12)
    _assert_silent(diag)
    pred = model.predict(x[360:], verbose=0)[:, 0] > 0.5
    assert np.mean(pred != (y[360:] > 0.5)) <= 0.2


def test_one_hot_categorical_crossentropy(small):
    (x, y), (xv, yv) = small
    eye = np.eye(10, dtype="float32")
    model = _mlp(loss="categorical_crossentropy")
    diag = _fit(model, x, eye[y], validation_data=(xv, eye[yv]))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_from_logits(small):
    (x, y), (xv, yv) = small
    model = _mlp(
        out_act=None,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    diag = _fit(model, x, y, validation_data=(xv, yv))
    _assert_silent(diag)
    _learned(model, xv, yv)


def test_one_epoch(small):
    (x, y), (xv, yv) = small
    model = _mlp(lr=1e-2)
    diag = _fit(model, x, y, validation_data=(xv, yv), epochs=1,
                batch_size=16)
    _assert_silent(diag)
    _learned(model, xv, yv, at_most=0.3)


def test_twenty_samples():
    x, y = make_blobs(40, centers=[[-3, -3], [3, 3]], random_state=0)
    x, y = x.astype("float32"), y.astype("float32")
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy")
    diag = _fit(model, x[:20], y[:20], validation_data=(x[20:], y[20:]),
                epochs=20, batch_size=4)
    _assert_silent(diag)
    assert np.all((model.predict(x[20:], verbose=0)[:, 0] > 0.5) == y[20:])


def test_nan_input_row_is_diverged_and_weights_stay_finite(small):
    (x, y), (xv, yv) = small
    x = x.copy()
    x[17] = np.nan
    model = _mlp()
    diag = _fit(model, x, y, validation_data=(xv, yv))
    codes = [f.code for f in _problems(diag)]
    assert codes and codes[0] == "diverged", codes
    found = _problems(diag)[0]
    text = (str(found) + json.dumps(found.evidence, default=str)).lower()
    assert "nan" in text and "input" in text, text
    for w in model.get_weights():
        assert np.all(np.isfinite(w))
