"""LossCurvePlot: a readable PNG of the curves, findings marked."""

import collections
import json
import os
import sys
import warnings

import keras
import numpy as np
import pytest

import keras_training_kit as ktk
from keras_training_kit import diagnosis

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FakeFinding = collections.namedtuple("FakeFinding", "code severity epoch")


def _read_png(path) -> np.ndarray:
    from matplotlib.image import imread

    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 10_000
    return imread(path)


def _overfitting_history(n: int = 20) -> dict:
    epochs = np.arange(n)
    return {
        "loss": list(2.0 * np.exp(-epochs / 4) + 0.05),
        "val_loss": list(2.0 * np.exp(-epochs / 4) + 0.3
                         + 0.06 * np.maximum(epochs - 8, 0)),
        "learning_rate": list(0.1 * 0.5 ** (epochs // 5)),
    }


def _drive(callback, history: dict) -> None:
    """Runs the epoch hooks on synthetic logs, as `fit` would."""
    callback.set_model(keras.Sequential([keras.Input((2,)),
                                         keras.layers.Dense(1)]))
    callback.on_train_begin()
    for epoch in range(len(history["loss"])):
        callback.on_epoch_end(
            epoch, {key: values[epoch] for key, values in history.items()}
        )
    callback.on_train_end()


def test_invalid_arguments_raise_naming_them():
    cases = [
        ({"path": ""}, "path"),
        ({"path": 3}, "path"),
        ({"path": "a.png", "dpi": 0}, "dpi"),
        ({"path": "a.png", "every_epoch": "yes"}, "every_epoch"),
        ({"path": "a.png", "mark_findings": None}, "mark_findings"),
        ({"path": "a.png", "log_scale": 1}, "log_scale"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            ktk.callbacks.LossCurvePlot(**kwargs)


def test_config_round_trip_and_json(tmp_path):
    plot = ktk.callbacks.LossCurvePlot(
        tmp_path / "c.png", every_epoch=True, mark_findings=False,
        log_scale=True, dpi=80,
    )
    config = plot.get_config()
    assert config["path"] == str(tmp_path / "c.png")
    assert json.loads(json.dumps(config)) == config
    assert (
        ktk.callbacks.LossCurvePlot.from_config(config).get_config() == config
    )
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(plot)
    )
    assert type(revived) is ktk.callbacks.LossCurvePlot
    assert revived.get_config() == config


def test_fit_writes_a_readable_png_with_the_logged_curves(digits, tmp_path):
    (x, y), (xv, yv) = digits
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(10),
    ])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 23, 0.5)
    model.compile(
        keras.optimizers.SGD(schedule),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    path = tmp_path / "curves.png"
    plot = ktk.callbacks.LossCurvePlot(str(path))
    history = model.fit(
        x, y, validation_data=(xv, yv), epochs=4, batch_size=64,
        callbacks=[plot], verbose=0,
    )
    image = _read_png(path)
    assert image.shape[0] > 300 and image.shape[1] > 500
    # Not a blank canvas: many distinct colours (curves, text, axes).
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50
    np.testing.assert_allclose(plot.history["loss"], history.history["loss"])
    np.testing.assert_allclose(
        plot.history["val_loss"], history.history["val_loss"]
    )
    # The schedule, evaluated after each epoch's 23 updates.
    np.testing.assert_allclose(
        plot.history["learning_rate"], 0.05 * 0.5 ** np.arange(1, 5),
        rtol=1e-5,
    )
    assert {f.code for f in plot.findings} <= set(diagnosis.CODES)


def test_findings_from_diagnose_are_marked(tmp_path):
    history = _overfitting_history()
    expected = [f for f in diagnosis.diagnose(history)
                if f.code == "overfitting"]
    assert expected and expected[0].epoch is not None
    marked = ktk.callbacks.LossCurvePlot(tmp_path / "marked.png")
    _drive(marked, history)
    assert [f.code for f in marked.findings] == ["overfitting"]
    assert marked.findings[0].epoch == expected[0].epoch
    plain = ktk.callbacks.LossCurvePlot(
        tmp_path / "plain.png", mark_findings=False
    )
    _drive(plain, history)
    assert plain.findings == []
    with_line = _read_png(tmp_path / "marked.png")
    without = _read_png(tmp_path / "plain.png")
    assert with_line.shape == without.shape
    assert np.abs(with_line - without).sum() > 100  # the line and label


def test_render_marks_any_findings_and_skips_info(tmp_path):
    history = _overfitting_history(10)
    base = ktk.callbacks.LossCurvePlot.render(
        history, tmp_path / "base.png", title="t"
    )
    info = ktk.callbacks.LossCurvePlot.render(
        history, tmp_path / "info.png", title="t",
        findings=[FakeFinding("healthy", "info", None)],
    )
    marked = ktk.callbacks.LossCurvePlot.render(
        history, tmp_path / "err.png", title="t",
        findings=[FakeFinding("lr_too_high", "error", 4)],
    )
    np.testing.assert_array_equal(_read_png(base), _read_png(info))
    assert np.abs(_read_png(base) - _read_png(marked)).sum() > 100


def test_failing_diagnosis_warns_and_still_plots(tmp_path, monkeypatch):
    def broken(history):
        raise RuntimeError("boom")

    monkeypatch.setattr(diagnosis, "diagnose", broken)
    plot = ktk.callbacks.LossCurvePlot(tmp_path / "c.png")
    with pytest.warns(UserWarning, match="boom"):
        _drive(plot, _overfitting_history(8))
    _read_png(tmp_path / "c.png")


def test_every_epoch_redraws_during_training(tmp_path):
    path = tmp_path / "live.png"
    plot = ktk.callbacks.LossCurvePlot(path, every_epoch=True)
    plot.set_model(keras.Sequential([keras.Input((2,)),
                                     keras.layers.Dense(1)]))
    plot.on_train_begin()
    plot.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.1})
    assert path.exists()  # before train end
    first = path.stat().st_mtime_ns, path.stat().st_size
    plot.on_epoch_end(1, {"loss": 0.8, "val_loss": 0.9})
    assert (path.stat().st_mtime_ns, path.stat().st_size) != first
    once = ktk.callbacks.LossCurvePlot(tmp_path / "once.png")
    once.set_model(plot.model)
    once.on_train_begin()
    once.on_epoch_end(0, {"loss": 1.0})
    assert not (tmp_path / "once.png").exists()


def test_diverged_and_sparse_validation_curves(tmp_path):
    nan = float("nan")
    plot = ktk.callbacks.LossCurvePlot(tmp_path / "d.png", log_scale=True)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.25), "mse")
    plot.set_model(model)
    plot.on_train_begin()
    # Validation every other epoch (validation_freq=2), then a NaN loss.
    for epoch, loss in enumerate([2.0, 1.5, 1.2, 1.1, nan]):
        logs = {"loss": loss}
        if epoch % 2:
            logs["val_loss"] = loss + 0.1
        plot.on_epoch_end(epoch, logs)
    plot.on_train_end()
    assert plot.history["val_loss"] == [None, 1.5 + 0.1, None, 1.1 + 0.1,
                                        None]
    assert plot.history["learning_rate"] == [0.25] * 5
    assert [f.code for f in plot.findings] == ["diverged"]
    _read_png(tmp_path / "d.png")
    # The same gaps without the NaN: no false "diverged".
    plot.on_train_begin()
    for epoch, loss in enumerate([2.0, 1.5, 1.2, 1.1, 1.0, 0.9]):
        logs = {"loss": loss}
        if epoch % 2:
            logs["val_loss"] = loss + 0.1
        plot.on_epoch_end(epoch, logs)
    plot.on_train_end()
    assert "diverged" not in [f.code for f in plot.findings]


def test_render_needs_a_loss(tmp_path):
    with pytest.raises(ValueError, match="`loss`"):
        ktk.callbacks.LossCurvePlot.render(
            {"val_loss": [1.0]}, tmp_path / "x.png"
        )
