"""A search killed mid-trial resumes without redoing any completed trial.

Three levels: (1) a real subprocess killed with SIGKILL, either mid-trial
(a fit callback logs every fit and blocks at the second one) or just after
`Oracle.end_trial` saved the oracle (keras-tuner 1.4.8 saves it while the
finished trial is still "ongoing"); (2) the same two interruptions
in-process for every strategy (a `KeyboardInterrupt` escapes keras-tuner's
error handling exactly like a kill); (3) the oracles driven by hand, as a
distributed chief drives them: keras-tuner 1.4.8's re-run of the last
finished trial and its GridSearch KeyError, reproduced on the plain
oracles and fixed in every oracle the kit builds. Every fit is counted per
hyperparameter point, so a single re-run of any finished trial fails.
"""

import collections
import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import keras_tuner  # noqa: F401  (a declared dependency: missing fails)

from keras_training_kit import _compat  # noqa: E402
from keras_training_kit.tuning import SearchResult, search  # noqa: E402

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    from keras_training_kit.tuning import search

    import keras_tuner as kt

    directory, log, hang, strategies = sys.argv[1:5]
    # strategy:mode, mode "fit" (mid-trial) or "save" (after end_trial)
    MODES = dict(s.split(":") for s in strategies.split(","))
    COUNT = {}

    def freeze():
        open(log + ".hang", "w").close()
        time.sleep(600)  # killed here

    _save = kt.Oracle.save

    def save(self):
        _save(self)
        # keras-tuner's end_trial saved with the finished trial "ongoing".
        name = self._project_name
        if (name == hang and MODES[name] == "save"
                and len(self.end_order) == 2
                and any(t.trial_id in self.end_order
                        for t in self.ongoing_trials.values())):
            freeze()

    kt.Oracle.save = save

    class Log(keras.callbacks.Callback):
        def __init__(self, strategy):
            super().__init__()
            self.strategy = strategy

        def on_train_begin(self, logs=None):
            with open(log, "a") as f:
                f.write(self.strategy + "\\n")
            COUNT[self.strategy] = COUNT.get(self.strategy, 0) + 1
            if (self.strategy == hang and MODES[hang] == "fit"
                    and COUNT[self.strategy] == 2):
                freeze()  # mid-trial

    def build(hp):
        lr = hp.Choice("lr", [0.01, 0.02, 0.03])
        units = hp.Choice("units", [2, 4])
        model = keras.Sequential([keras.Input((3,)),
                                  keras.layers.Dense(units),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(lr), "mse")
        return model

    rng = np.random.RandomState(0)
    x = rng.randn(24, 3).astype("float32")
    y = x[:, :1]
    # The last run also restarts each finished search: it must train nothing.
    for _ in range(1 if hang != "None" else 2):
        for strategy in MODES:
            search(build, x, y, strategy=strategy, max_trials=3, epochs=1,
                   validation_split=0.25, directory=directory, seed=1,
                   verbose=0, callbacks=[Log(strategy)])
    print("DONE")
    """
)


def _trials(directory, strategy):
    out = {}
    for path in glob.glob(os.path.join(directory, strategy, "trial_*",
                                       "trial.json")):
        with open(path) as f:
            t = json.load(f)
        out[t["trial_id"]] = (
            t["status"], t["score"], json.dumps(t["hyperparameters"]["values"],
                                                sort_keys=True)
        )
    return out


def _strategies():
    # Optuna is a declared dependency: TPE is always in (missing fails).
    return ["grid", "random", "bayesian", "hyperband", "tpe"]


def test_sigkill_mid_trial_then_resume(tmp_path):
    # A real SIGKILL for every strategy: mid-trial for grid search (which
    # keras-tuner itself cannot resume) and Bayesian optimization; just after
    # `end_trial` saved the oracle for random search (the reported case),
    # Hyperband (bracket state) and TPE. All strategies are interrupted both
    # ways in-process below.
    modes = {"grid": "fit", "bayesian": "fit", "random": "save",
             "hyperband": "save"}
    if "tpe" in _strategies():
        modes["tpe"] = "save"
    strategies = list(modes)
    script = tmp_path / "run_search.py"
    script.write_text(SCRIPT)
    directory, log = str(tmp_path / "runs"), str(tmp_path / "fits.log")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    arg = ",".join(f"{k}:{m}" for k, m in modes.items())
    done_before_kill = {}
    for hang in strategies + [None]:
        proc = subprocess.Popen(
            [sys.executable, str(script), directory, log, str(hang), arg],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        if hang is None:
            out = proc.communicate(timeout=300)[0].decode()
            assert proc.returncode == 0 and "DONE" in out, out[-3000:]
            break
        deadline = time.time() + 300
        while not os.path.exists(log + ".hang"):
            assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
            assert time.time() < deadline
            time.sleep(0.1)
        done_before_kill[hang] = {
            k: v for k, v in _trials(directory, hang).items()
            if v[0] == "COMPLETED"
        }
        # "fit": one done, one running; "save": two done, none running.
        assert len(done_before_kill[hang]) == (
            1 if modes[hang] == "fit" else 2
        ), (hang, _trials(directory, hang))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        os.remove(log + ".hang")

    with open(log) as f:
        fits = f.read().split()
    for strategy in strategies:
        trials = _trials(directory, strategy)
        assert len(trials) == 3, (strategy, trials)
        assert all(v[0] == "COMPLETED" for v in trials.values()), trials
        # Completed trials survive the kill untouched...
        for trial_id, before in done_before_kill[strategy].items():
            assert trials[trial_id] == before
        # ... and are never trained again: 3 trials (+ the killed one), also
        # when the finished search is started once more.
        expected = 4 if modes[strategy] == "fit" else 3
        assert fits.count(strategy) == expected, (strategy, fits)
        assert len({v[2] for v in trials.values()}) == 3  # distinct points


FITS = []


def _point(model):
    lr = float(model.optimizer.learning_rate)  # float32: round
    return model.layers[0].units, round(lr, 4)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.stop_at = stop_at

    def on_train_begin(self, logs=None):
        FITS.append(_point(self.model))
        if len(FITS) == self.stop_at:
            raise KeyboardInterrupt  # not caught by keras-tuner: a "kill"


def _interrupt_after_end_trial(monkeypatch):
    """Raise a "kill" right after `end_trial` saved the second trial."""
    import keras_tuner as kt
    original = kt.Oracle.save

    def save(self):
        original(self)
        if len(self.end_order) == 2 and any(
            t.trial_id in self.end_order for t in self.ongoing_trials.values()
        ):
            monkeypatch.setattr(kt.Oracle, "save", original)
            raise KeyboardInterrupt

    monkeypatch.setattr(kt.Oracle, "save", save)


def _build(hp):
    lr = hp.Choice("lr", [0.01, 0.02, 0.03])
    units = hp.Choice("units", [2, 4])
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(units), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(lr), "mse")
    return model


ORACLES = {
    "grid": "GridSearchOracle", "random": "RandomSearchOracle",
    "bayesian": "BayesianOptimizationOracle", "hyperband": "HyperbandOracle",
    "tpe": "TPEOracle",
}


@pytest.mark.parametrize("when", ["mid_trial", "after_end_trial"])
@pytest.mark.parametrize("strategy", _strategies())
def test_interrupted_search_resumes(strategy, when, tmp_path, capsys,
                                    monkeypatch):
    """Also the end-to-end test of every strategy through `search`."""
    FITS.clear()
    rng = np.random.RandomState(0)
    x = rng.randn(24, 3).astype("float32")
    kwargs = dict(
        strategy=strategy, max_trials=3, epochs=1, validation_split=0.25,
        directory=str(tmp_path), seed=1, verbose=0,
    )
    if when == "mid_trial":
        stop_at, n_done, n_files = 2, 1, 2  # one done, one running
    else:
        _interrupt_after_end_trial(monkeypatch)
        stop_at, n_done, n_files = None, 2, 2  # two done, none running
    with pytest.raises(KeyboardInterrupt):
        search(_build, x, x[:, :1], callbacks=[_Interrupt(stop_at)], **kwargs)
    before = _trials(str(tmp_path), strategy)
    done = {k: v for k, v in before.items() if v[0] == "COMPLETED"}
    assert len(done) == n_done and len(before) == n_files, before
    result = search(_build, x, x[:, :1], callbacks=[_Interrupt()], **kwargs)
    after = _trials(str(tmp_path), strategy)
    assert len(after) == 3 and all(v[0] == "COMPLETED" for v in after.values())
    for trial_id, values in done.items():
        assert after[trial_id] == values
    # Each point trained once; only a trial killed mid-trial trains twice.
    counts = collections.Counter(FITS)
    assert len(counts) == 3, FITS
    assert sorted(counts.values()) == ([1, 1, 2] if stop_at else [1, 1, 1])
    if stop_at:
        assert counts[FITS[stop_at - 1]] == 2  # the killed one, rerun
    # A finished search started again trains nothing.
    again = search(_build, x, x[:, :1], callbacks=[_Interrupt()], **kwargs)
    assert collections.Counter(FITS) == counts
    assert len(again.trials) == 3
    assert len({v[2] for v in after.values()}) == 3
    assert capsys.readouterr().out == ""  # verbose=0: quiet
    # keras-tuner's own oracle ran the search.
    assert any(
        c.__name__ == ORACLES[strategy]
        for c in type(result.tuner.oracle).__mro__
    )
    assert isinstance(result, SearchResult) and len(result.trials) == 3
    for t in result.trials:
        assert t["status"] == "completed"
        assert t["hyperparameters"]["lr"] in (0.01, 0.02, 0.03)
        assert t["hyperparameters"]["units"] in (2, 4)
        assert not any(k.startswith("tuner/") for k in t["hyperparameters"])
    scores = [t["score"] for t in result.trials]
    assert result.best_score == min(scores)
    best = min(result.trials, key=lambda t: t["score"])
    assert result.best_hyperparameters == best["hyperparameters"]


def _drive(oracle, n, score=lambda values: values["lr"]):
    """Runs `n` trials on the oracle by hand; returns their values."""
    seen = []
    for _ in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        oracle.update_trial(trial.trial_id,
                            {"val_loss": score(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        seen.append(dict(trial.hyperparameters.values))
    return seen


@pytest.mark.parametrize("fixed", [False, True])
def test_grid_resume_keyerror_and_fix(fixed, tmp_path):
    import keras_tuner as kt
    from keras_training_kit.tuning import ResumableGridSearchOracle

    cls = ResumableGridSearchOracle if fixed else kt.oracles.GridSearchOracle

    def fresh():
        hp = kt.HyperParameters()
        hp.Choice("lr", [0.01, 0.02, 0.03])
        hp.Choice("units", [2, 4])
        oracle = cls(objective="val_loss", max_trials=6, hyperparameters=hp)
        _compat.kt_set_project_dir(oracle, str(tmp_path), "grid")
        oracle.verbose = 0
        return oracle

    first = fresh()
    seen = _drive(first, 2)
    running = first.create_trial("tuner0")  # then the process dies
    first.save()
    resumed = fresh()
    resumed.reload()
    if not fixed:  # keras-tuner 1.4.8: keras-team/keras-tuner#1055
        with pytest.raises(KeyError):
            _drive(resumed, 4)
        return
    rest = _drive(resumed, 10)
    assert rest[0] == running.hyperparameters.values  # the killed one, rerun
    grid = [{"lr": a, "units": b} for a in (0.01, 0.02, 0.03) for b in (2, 4)]
    assert seen + rest == grid  # every point once, in grid order


def _oracle(strategy, fixed, tmp_path, max_trials):
    import keras_tuner as kt
    from keras_training_kit.tuning._construct import make_oracle

    if fixed:
        oracle = make_oracle(strategy, "val_loss", max_trials, 1, 1)
    else:  # keras-tuner 1.4.8's own oracle
        oracle = kt.oracles.RandomSearchOracle(
            objective="val_loss", max_trials=max_trials, seed=1
        )
    hp = kt.HyperParameters()
    hp.Choice("lr", [0.01, 0.02, 0.03])
    hp.Choice("units", [2, 4])
    oracle.update_space(hp)
    _compat.kt_set_project_dir(oracle, str(tmp_path), strategy)
    oracle.verbose = 0
    return oracle


@pytest.mark.parametrize(
    "strategy, fixed",
    [("random", False)] + [(s, True) for s in _strategies()],
)
def test_reload_retries_only_unfinished_trials(strategy, fixed, tmp_path):
    """A chief (or a process killed right after `end_trial`) reloaded."""
    first = _oracle(strategy, fixed, tmp_path, 4)
    ran = [t for t in _drive_ids(first, 2)]  # its last save: in end_trial
    resumed = _oracle(strategy, fixed, tmp_path, 4)
    resumed.reload()
    rest = _drive_ids(resumed, 10)
    if not fixed:  # keras-tuner 1.4.8 re-runs the last finished trial
        assert rest[0] == ran[-1]
        return
    assert _compat.kt_retry_queue(resumed) == [] and rest[0] not in ran
    assert sorted(ran + rest) == ["0", "1", "2", "3"]  # each exactly once


def test_reload_after_trial_file_but_before_oracle_save(tmp_path):
    """Killed between the two files `end_trial` writes: not retried."""
    first = _oracle("random", True, tmp_path, 3)
    ran = _drive_ids(first, 1)
    trial = first.create_trial("tuner0")  # saved as ongoing
    first.update_trial(trial.trial_id, {"val_loss": 1.0})
    trial.status = "COMPLETED"
    first.trials[trial.trial_id].status = "COMPLETED"
    first._save_trial(first.trials[trial.trial_id])  # then killed
    resumed = _oracle("random", True, tmp_path, 3)
    resumed.reload()
    assert _compat.kt_retry_queue(resumed) == []
    assert resumed.end_order == ran + [trial.trial_id]
    rest = _drive_ids(resumed, 10)
    assert rest == ["2"]


def _drive_ids(oracle, n):
    """Runs `n` trials by hand, as keras-tuner's chief: no save after
    `end_trial`; returns the trial ids run."""
    ids = []
    for _ in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        assert trial.status == "RUNNING", trial.status
        oracle.update_trial(
            trial.trial_id, {"val_loss": trial.hyperparameters.values["lr"]}
        )
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        ids.append(trial.trial_id)
    return ids
