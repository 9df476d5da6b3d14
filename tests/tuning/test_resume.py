"""A search killed mid-trial resumes without redoing any completed trial.

Three levels: (1) a real subprocess killed with SIGKILL: a fit callback logs
every fit and blocks at the second one (the first trial is then complete,
the second in progress) until the test kills the process; (2) the same
interruption in-process for every strategy (a `KeyboardInterrupt` escapes
keras-tuner's error handling exactly like a kill: the trial stays RUNNING
on disk); (3) keras-tuner 1.4.8's GridSearch resume bug, reproduced on the
plain oracle and fixed by `ResumableGridSearchOracle`.
"""

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

pytest.importorskip("keras_tuner")

from keras_training_kit.tuning import SearchResult, search  # noqa: E402

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    from keras_training_kit.tuning import search

    directory, log, hang, strategies = sys.argv[1:5]
    COUNT = {}

    class Log(keras.callbacks.Callback):
        def __init__(self, strategy):
            super().__init__()
            self.strategy = strategy

        def on_train_begin(self, logs=None):
            with open(log, "a") as f:
                f.write(self.strategy + "\\n")
            COUNT[self.strategy] = COUNT.get(self.strategy, 0) + 1
            if self.strategy == hang and COUNT[self.strategy] == 2:
                open(log + ".hang", "w").close()
                time.sleep(600)  # killed here, mid-trial

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
    for strategy in strategies.split(","):
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
    names = ["grid", "random", "bayesian", "hyperband"]
    try:
        import optuna  # noqa: F401

        from keras_training_kit.tuning import tpe  # noqa: F401

        names.append("tpe")
    except ImportError:
        pass
    return names


@pytest.mark.slow
def test_sigkill_mid_trial_then_resume(tmp_path):
    # Each process start costs ~10 s of imports: the real kill is tested on
    # grid search (which keras-tuner itself cannot resume) and Hyperband
    # (bracket state); all strategies are interrupted in-process below.
    strategies = ["grid", "hyperband"]
    script = tmp_path / "run_search.py"
    script.write_text(SCRIPT)
    directory, log = str(tmp_path / "runs"), str(tmp_path / "fits.log")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    arg = ",".join(strategies)
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
        assert len(done_before_kill[hang]) == 1  # one done, one running
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
        # ... and are never trained again: 3 trials + the killed one.
        assert fits.count(strategy) == 4, (strategy, fits)
        assert len({v[2] for v in trials.values()}) == 3  # distinct points


FITS = []


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.stop_at = stop_at

    def on_train_begin(self, logs=None):
        FITS.append(1)
        if len(FITS) == self.stop_at:
            raise KeyboardInterrupt  # not caught by keras-tuner: a "kill"


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


@pytest.mark.parametrize("strategy", _strategies())
def test_interrupted_mid_trial_resumes(strategy, tmp_path, capsys):
    """Also the end-to-end test of every strategy through `search`."""
    FITS.clear()
    rng = np.random.RandomState(0)
    x = rng.randn(24, 3).astype("float32")
    kwargs = dict(
        strategy=strategy, max_trials=3, epochs=1, validation_split=0.25,
        directory=str(tmp_path), seed=1, verbose=0,
    )
    with pytest.raises(KeyboardInterrupt):
        search(_build, x, x[:, :1], callbacks=[_Interrupt(2)], **kwargs)
    before = _trials(str(tmp_path), strategy)
    done = {k: v for k, v in before.items() if v[0] == "COMPLETED"}
    assert len(done) == 1 and len(before) == 2  # one done, one running
    result = search(_build, x, x[:, :1], callbacks=[_Interrupt()], **kwargs)
    after = _trials(str(tmp_path), strategy)
    assert len(after) == 3 and all(v[0] == "COMPLETED" for v in after.values())
    for trial_id, values in done.items():
        assert after[trial_id] == values
    assert len(FITS) == 4  # 3 trials + the interrupted one, none redone
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
    kt = pytest.importorskip("keras_tuner")
    from keras_training_kit.tuning import ResumableGridSearchOracle

    cls = ResumableGridSearchOracle if fixed else kt.oracles.GridSearchOracle

    def fresh():
        hp = kt.HyperParameters()
        hp.Choice("lr", [0.01, 0.02, 0.03])
        hp.Choice("units", [2, 4])
        oracle = cls(objective="val_loss", max_trials=6, hyperparameters=hp)
        oracle._set_project_dir(str(tmp_path), "grid")
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
