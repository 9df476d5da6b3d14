"""ktk.tuning.search over keras-tuner's oracles."""

import math

import keras
import numpy as np
import pytest

import keras_tuner as kt  # noqa: F401 - declared: missing fails

from keras_training_kit.tuning import search  # noqa: E402

FITS = []  # (trial learning rate, epochs run) of every fit


class _Record(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        lr = float(self.model.optimizer.learning_rate)  # float32: round
        FITS.append([float(f"{lr:.3g}"), 0])

    def on_epoch_end(self, epoch, logs=None):
        FITS[-1][1] += 1


def _data(n=40, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 3).astype("float32")
    y = (x @ np.array([[1.0], [-1.0], [0.5]])).astype("float32")
    return x, y


def _build(hp):
    lr = hp.Choice("learning_rate", [0.01, 0.05])
    units = hp.Choice("units", [2, 4])
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(units), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(lr), "mse", metrics=["mae"])
    return model


def test_result_best_model_progress_bar_and_plot(tmp_path, capsys):
    x, y = _data()
    xv, yv = _data(16, seed=1)
    result = search(
        _build, x, y, strategy="grid", max_trials=2, epochs=1,
        validation_data=(xv, yv), directory=tmp_path, verbose=1,
    )
    out = capsys.readouterr().out
    assert "2/2" in out and "best" in out and "elapsed" in out
    assert "Search: Running Trial" not in out  # keras-tuner's display: off
    # Grid order: defaults first, then the next value of the last knob.
    assert [t["hyperparameters"] for t in result.trials] == [
        {"learning_rate": 0.01, "units": 2},
        {"learning_rate": 0.01, "units": 4},
    ]
    model = result.best_model()
    # One epoch: the best checkpoint is the trained model; its val_loss is
    # the trial's score, recomputed here from predictions.
    mse = float(np.mean((model.predict(xv, verbose=0) - yv) ** 2))
    assert mse == pytest.approx(result.best_score, rel=1e-4)
    path = result.plot(str(tmp_path / "search.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _build_diverging(hp):
    lr = hp.Choice("learning_rate", [0.01, 1e8, 1e9, 1e10, 0.02, 1e11])
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(lr), "mse")
    return model


def test_diverged_trials_pruned_and_search_completes(tmp_path):
    """Half the learning rates diverge, three in a row: keras-tuner alone
    would stop after 3 consecutive failed trials; here all 6 run."""
    FITS.clear()
    x, y = _data()
    result = search(
        _build_diverging, x, y, strategy="grid", max_trials=6, epochs=2,
        validation_split=0.25, directory=tmp_path, verbose=0,
        callbacks=[_Record()], batch_size=4,
    )
    status = {t["hyperparameters"]["learning_rate"]: t for t in result.trials}
    assert len(status) == 6
    for lr, t in status.items():
        if lr > 1:
            assert t["status"] == "diverged" and math.isnan(t["score"])
        else:
            assert t["status"] == "completed" and math.isfinite(t["score"])
    assert result.best_hyperparameters["learning_rate"] in (0.01, 0.02)
    # Pruned: a diverged fit stops in its first epoch; others run both.
    epochs = {lr: n for lr, n in FITS}
    assert epochs[0.01] == epochs[0.02] == 2
    assert all(epochs[lr] == 1 for lr in epochs if lr > 1)
    # Recorded for the oracle as completed with a finite, worse score.
    trials = result.tuner.oracle.trials.values()
    good = max(t.score for t in trials if not t.metrics.exists("diverged"))
    for t in trials:
        assert t.status == "COMPLETED" and math.isfinite(t.score)
        if t.metrics.exists("diverged"):
            assert t.score > good


def test_without_pruning_diverged_trials_fail(tmp_path):
    x, y = _data()

    def build(hp):
        hp.Choice("learning_rate", [1e10, 1e11, 1e12])
        return _build_diverging(hp)

    with pytest.raises(RuntimeError, match="consecutive failures"):
        search(
            build, x, y, strategy="grid", max_trials=3, epochs=1,
            validation_split=0.25, directory=tmp_path, verbose=0,
            prune=False, batch_size=4,
        )


def test_bad_input_raises_before_any_trial(tmp_path):
    FITS.clear()
    x, y = _data()
    ok = dict(directory=tmp_path, verbose=0, callbacks=[_Record()])
    cases = [
        (dict(strategy="annealing"), "strategy"),
        (dict(folds=1), "folds"),
        (dict(max_trials=0), "max_trials"),
        (dict(folds=3, validation_split=0.2), "folds"),
        (dict(validation_split=1.5), "validation_split"),
        (dict(), "no validation data"),  # val_loss, nothing to validate on
        (dict(validation_split=0.2, objective="val_accuracy"), "not logged"),
        (dict(objective="mae_typo"), "not logged"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            search(_build, x, y, **{**ok, **kwargs})
    with pytest.raises(ValueError, match="same number"):
        search(_build, x, y[:10], validation_split=0.2, **ok)
    with pytest.raises(ValueError, match="empty"):
        search(_build, x[:0], y[:0], validation_split=0.2, **ok)

    def uncompiled(hp):
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])

    with pytest.raises(ValueError, match="compiled"):
        search(uncompiled, x, y, validation_split=0.2, **ok)
    assert FITS == []  # no trial ever trained
    # Logged names are accepted, including metrics of the compile call.
    result = search(
        _build, x, y, objective="val_mae", max_trials=1, epochs=1,
        validation_split=0.2, **ok,
    )
    assert result.objective == "val_mae" and len(FITS) == 1


DIST_SCRIPT = """
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import numpy as np
from keras_training_kit.tuning import search

directory, log = sys.argv[1:3]

def build(hp):
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(hp.Int("units", 1, 32)),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1)), "mse",
                  run_eagerly=True)
    return model

x = np.random.RandomState(0).randn(24, 3).astype("float32")
result = search(build, x, x[:, :1], max_trials=4, epochs=1,
                validation_split=0.25, directory=directory, verbose=0, seed=1)
with open(log, "a") as f:
    f.write(json.dumps({"who": os.environ["KERASTUNER_TUNER_ID"],
                        "trials": result.trials}) + "\\n")
"""


def test_search_as_keras_tuner_chief_and_workers(tmp_path):
    """`search` in keras-tuner's distributed mode: the chief serves the
    oracle and returns every trial; each worker returns the ones it ran."""
    import json

    from keras_training_kit.tuning import run_workers

    script = tmp_path / "dist.py"
    script.write_text(DIST_SCRIPT)
    log = tmp_path / "log.jsonl"
    rc = run_workers(
        str(script), workers=2,
        script_args=(str(tmp_path / "runs"), str(log)),
    )
    assert rc == 0
    results = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        results[entry["who"]] = entry["trials"]
    assert set(results) == {"chief", "tuner0", "tuner1"}
    chief = {t["trial_id"]: t for t in results["chief"]}
    assert len(chief) == 4
    assert {t["status"] for t in chief.values()} == {"completed"}
    ran = [t["trial_id"] for w in ("tuner0", "tuner1") for t in results[w]]
    assert sorted(ran) == sorted(chief)  # every trial run exactly once
    for w in ("tuner0", "tuner1"):
        for t in results[w]:
            assert t["score"] == pytest.approx(chief[t["trial_id"]]["score"])


def test_prune_callback_is_training_diagnosis_on_the_loss_only():
    from keras_training_kit.callbacks import TrainingDiagnosis
    from keras_training_kit.tuning._engine import make_prune_callback

    callback = make_prune_callback()
    assert type(callback) is TrainingDiagnosis
    assert tuple(callback.stop_on) == ("diverged",)


class _Stop(Exception):
    pass


def _no_search(monkeypatch, seen=None):
    """`tuner.search` stops at once: no gRPC server, no trial."""
    from keras_training_kit.tuning._engine import KitTuner

    def fake_search(self, *args, **kwargs):
        if seen is not None:
            seen["directory"] = self.directory
        raise _Stop

    monkeypatch.setattr(KitTuner, "search", fake_search)


def _distributed_env(monkeypatch, tuner_id):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")  # never dialled


@pytest.mark.parametrize("tuner_id", ["chief", "tuner0"])
def test_distributed_mode_requires_a_directory(tuner_id, monkeypatch):
    # A per-process temporary directory would give each process its own
    # project: refused before anything is built or trained.
    _distributed_env(monkeypatch, tuner_id)
    _no_search(monkeypatch)
    built = []

    def build(hp):
        built.append(1)
        return _build(hp)

    x, y = _data()
    with pytest.raises(ValueError, match="`directory`.*distributed"):
        search(build, x, y, validation_split=0.25, max_trials=1, verbose=0)
    assert built == []


@pytest.mark.parametrize(
    "tuner_id, deleted", [(None, True), ("chief", True), ("tuner0", False)]
)
def test_overwrite_is_applied_by_the_chief_only(
    tuner_id, deleted, tmp_path, monkeypatch
):
    # A worker honouring overwrite=True would delete the shared project
    # while the chief and the other workers use it.
    if tuner_id is None:
        monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    else:
        _distributed_env(monkeypatch, tuner_id)
    marker = tmp_path / "random" / "trial_0" / "trial.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    seen = {}
    _no_search(monkeypatch, seen)
    x, y = _data()
    with pytest.raises(_Stop):
        search(
            _build, x, y, validation_split=0.25, max_trials=1, verbose=0,
            directory=tmp_path, overwrite=True,
        )
    assert seen["directory"] == str(tmp_path)
    assert marker.exists() is not deleted


def test_frozen_heap_around_a_search():
    """The heap alive at the start of a search is frozen during it (so
    keras-tuner's two collections per trial scan only the trials' objects)
    and unfrozen after; a process that froze its own heap keeps it."""
    import gc

    from keras_training_kit.tuning._engine import frozen_heap

    gc.unfreeze()  # a user's process (conftest.py froze this one)
    try:
        with frozen_heap():
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() == 0
        with pytest.raises(RuntimeError):
            with frozen_heap():
                raise RuntimeError("a failed search")
        assert gc.get_freeze_count() == 0
    finally:
        gc.freeze()
    before = gc.get_freeze_count()
    with frozen_heap():
        pass
    assert gc.get_freeze_count() >= before > 0


def test_best_model_restores_the_optimizer_state_without_a_warning(
        tmp_path):
    """keras-tuner's `load_model` skips the optimizer's saved variables
    (with a Keras warning); the kit's restores them: the step count and
    the moments equal the trained model's."""
    import warnings

    import keras_training_kit as ktk

    rng = np.random.RandomState(0)
    x = rng.randn(96, 3).astype("float32")
    y = (x @ np.array([[1.0], [-1.0], [0.5]])).astype("float32")

    def build(hp):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(ktk.optimizers.Adam(hp.Choice("lr", [0.01])), "mse")
        return model

    result = search(build, x, y, strategy="random", max_trials=1, epochs=3,
                    validation_split=0.25, directory=tmp_path, verbose=0,
                    seed=0, batch_size=24)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = result.best_model()
    assert int(model.optimizer.iterations) == 3 * 3  # 72 rows / 24, x 3
    moments = [v for v in model.optimizer.variables
               if "momentum" in v.path or "velocity" in v.path]
    assert moments and all(
        float(np.abs(keras.ops.convert_to_numpy(v)).max()) > 0
        for v in moments)
