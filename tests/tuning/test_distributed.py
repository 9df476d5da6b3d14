"""keras-tuner's chief/worker mode, with real processes on loopback."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import keras_tuner  # noqa: F401  (a declared dependency: missing fails)
import optuna  # noqa: F401  (a declared dependency: missing fails)

from keras_training_kit.tuning import cli  # noqa: E402
from keras_training_kit.tuning.distributed import (  # noqa: E402
    role,
    run_workers,
)

# One search script, started once as chief and once per worker. Every copy
# logs its role and pid at start, and each trial's start and end, so the
# test sees who ran what; keras-tuner's trial files say what finished.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import keras
    import keras_tuner as kt
    from keras_training_kit.tuning.tpe import TPEOracle

    log, directory, strategy, pause = sys.argv[1:5]
    me = os.environ.get("KERASTUNER_TUNER_ID", "single")

    def write(**event):
        with open(log, "a") as f:
            f.write(json.dumps({"who": me, "pid": os.getpid(), **event}))
            f.write("\\n")

    write(event="boot", threads=os.environ.get("TF_NUM_INTRAOP_THREADS"))

    def build(hp):
        model = keras.Sequential([
            keras.Input((8,)),
            keras.layers.Dense(hp.Int("units", 4, 64, step=4), "relu"),
            keras.layers.Dense(1),
        ])
        # Eager: no tracing per trial, so the search is quick.
        model.compile(keras.optimizers.SGD(
            hp.Float("lr", 1e-3, 1e-1, sampling="log")), "mse",
            run_eagerly=True)
        return model

    class Logged(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            write(event="start", trial=trial.trial_id)
            time.sleep(float(pause))
            history = super().run_trial(trial, *args, **kwargs)
            write(event="end", trial=trial.trial_id)
            return history

    if strategy == "tpe":
        oracle = TPEOracle("loss", max_trials=6, seed=1, n_startup_trials=2)
    else:
        oracle = kt.oracles.RandomSearchOracle("loss", max_trials=6, seed=1)
    tuner = Logged(oracle=oracle, hypermodel=build, directory=directory,
                   project_name="dist", overwrite=False)
    rng = np.random.RandomState(0)
    x = rng.randn(64, 8).astype("float32")
    tuner.search(x, x.sum(1, keepdims=True), epochs=1, verbose=0)
    write(event="done")
    """
)


# The same search through `ktk.tuning.search` with TPE: a callback logs
# each training (who ran it and the trial's hyperparameters).
KTK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import keras
    import keras_training_kit as ktk
    from keras_training_kit.tuning.distributed import role

    log, directory = sys.argv[1:3]

    def write(**event):
        with open(log, "a") as f:
            f.write(json.dumps({"who": role(), "pid": os.getpid(), **event}))
            f.write("\\n")

    write(event="boot", threads=os.environ.get("TF_NUM_INTRAOP_THREADS"))

    def build(hp):
        model = keras.Sequential([
            keras.Input((8,)),
            keras.layers.Dense(hp.Int("units", 4, 64, step=4), "relu"),
            keras.layers.Dense(1),
        ])
        model.compile(keras.optimizers.SGD(
            hp.Float("lr", 1e-3, 1e-1, sampling="log")), "mse",
            run_eagerly=True)
        return model

    class Log(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            write(event="start", units=self.model.layers[0].units,
                  lr=float(self.model.optimizer.learning_rate))

    rng = np.random.RandomState(0)
    x = rng.randn(64, 8).astype("float32")
    result = ktk.tuning.search(
        build, x, x.sum(1, keepdims=True), strategy="tpe", objective="loss",
        max_trials=6, epochs=1, directory=directory, seed=1, verbose=0,
        callbacks=[Log()],
    )
    write(event="done", trials=len(result.trials))
    """
)


def _events(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


def _tune(workers, script, *args):
    """`python -m keras_training_kit tune` as a user runs it."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "keras_training_kit", "tune", "--workers",
         str(workers), "--timeout", "240", str(script), *map(str, args)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _nth_start(log, n, who="tuner0"):
    """A `_wait` condition: the `n`-th (1-based) training start of `who`
    (`None`: of the first worker that gets there)."""
    def condition():
        starts = [e for e in _events(log) if e["event"] == "start"]
        for name in [who] if who else sorted({e["who"] for e in starts}):
            mine = [e for e in starts if e["who"] == name]
            if len(mine) >= n:
                return mine[n - 1]
        return None
    return condition


def _kill_worker(proc, victim):
    """SIGKILLs the worker of `victim` (a start event); the run's output."""
    os.kill(victim["pid"], signal.SIGKILL)
    return proc.communicate(timeout=180)[0]


def _reap(proc):
    """Kills the launcher if a failed assertion left it running."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _trial_files(directory, project="dist"):
    root = os.path.join(directory, project)
    out = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(path):
            with open(path) as f:
                trial = json.load(f)
            out[trial["trial_id"]] = trial
    return out


@pytest.fixture
def script(tmp_path):
    """The plain keras-tuner search script, written to a temp file."""
    path = tmp_path / "search.py"
    path.write_text(SCRIPT)
    return path


def test_two_workers_run_every_trial_exactly_once(tmp_path):
    script = tmp_path / "ktk_search.py"
    script.write_text(KTK_SCRIPT)
    log, directory = str(tmp_path / "log.jsonl"), str(tmp_path / "runs")
    out = io.StringIO()
    code = run_workers(
        script, workers=2, script_args=(log, directory), timeout=240,
        output=out, env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    events = _events(log)
    assert code == 0, (out.getvalue()[-6000:], events)
    starts = [e for e in events if e["event"] == "start"]
    # 6 trainings, by workers only (never by the chief), shared by both.
    assert len(starts) == 6
    assert {e["who"] for e in starts} == {"tuner0", "tuner1"}
    # ... one per trial: TPE's 6 trials, each COMPLETED, each trained once.
    trials = _trial_files(os.path.join(directory), project="tpe")
    assert len(trials) == 6
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    ran = sorted((e["units"], round(e["lr"], 6)) for e in starts)
    planned = sorted(
        (
            t["hyperparameters"]["values"]["units"],
            round(t["hyperparameters"]["values"]["lr"], 6),
        )
        for t in trials.values()
    )
    assert ran == planned and len(set(ran)) == 6
    # TF threads were split: this machine's cores / 2 workers; chief gets 1.
    boots = {e["who"]: e["threads"] for e in events if e["event"] == "boot"}
    cores = len(os.sched_getaffinity(0))
    assert boots["chief"] == "1"
    assert boots["tuner0"] == boots["tuner1"] == str(max(1, cores // 2))
    # Every process finished its script; output is prefixed by role.
    done = {e["who"]: e["trials"] for e in events if e["event"] == "done"}
    assert set(done) == {"chief", "tuner0", "tuner1"}
    assert done["chief"] == 6  # the chief's result sees every trial
    assert "[ktk tune] chief on 127.0.0.1:" in out.getvalue()


def _wait(predicate, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _listening(pid):
    import psutil

    return [
        c.laddr
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


def test_killed_worker_loses_no_finished_trial(tmp_path, script):
    log, directory = str(tmp_path / "log.jsonl"), str(tmp_path / "runs")
    proc = _tune(2, script, log, directory, "random", "1.0")
    try:
        # The chief listens on loopback only.
        chief = _wait(
            lambda: [e for e in _events(log) if e["who"] == "chief"], 120, proc
        )[0]
        addrs = _wait(lambda: _listening(chief["pid"]), 60, proc)
        # (gRPC may use a dual-stack socket: IPv4-mapped loopback.)
        assert {a.ip.removeprefix("::ffff:") for a in addrs} == {"127.0.0.1"}

        # Kill tuner0 in the middle of its second trial.
        victim = _wait(_nth_start(log, 2), 120, proc)
        finished_before = {
            t for t, rec in _trial_files(directory).items()
            if rec["status"] == "COMPLETED"
        }
        output = _kill_worker(proc, victim)
    finally:
        _reap(proc)
    assert proc.returncode == 128 + signal.SIGKILL, output[-3000:]
    assert "worker tuner0 exited with code 137" in output
    trials = _trial_files(directory)
    # Nothing finished before the kill was lost, and the search finished:
    # the killed trial went back to the oracle and tuner1 ran it again.
    assert finished_before <= {
        t for t, rec in trials.items() if rec["status"] == "COMPLETED"
    }
    assert len(trials) == 6
    assert all(rec["status"] == "COMPLETED" for rec in trials.values())
    events = _events(log)
    starts = [(e["who"], e["trial"]) for e in events if e["event"] == "start"]
    rerun = victim["trial"]
    assert ("tuner1", rerun) in starts
    others = [t for _, t in starts if t != rerun]
    assert len(others) == len(set(others)) == 5  # all others ran once
    assert {e["who"] for e in events if e["event"] == "done"} == {
        "chief", "tuner1"
    }


def test_a_worker_starts_in_the_place_of_the_last_one_killed(tmp_path,
                                                              script):
    """When the worker that dies was the last one, nobody is left to run
    the trial it gave back: `run_workers` starts a worker in its place and
    the chief waits for it, so the search still finishes every trial."""
    log, directory = str(tmp_path / "log.jsonl"), str(tmp_path / "runs")
    proc = _tune(1, script, log, directory, "random", "1.0")
    try:
        victim = _wait(_nth_start(log, 2), 120, proc)
        output = _kill_worker(proc, victim)
    finally:
        _reap(proc)
    assert proc.returncode == 128 + signal.SIGKILL, output[-3000:]
    assert "starting tuner1 in the place of tuner0" in output, output[-3000:]
    trials = _trial_files(directory)
    statuses = {t: rec["status"] for t, rec in trials.items()}
    assert len(trials) == 6 and set(statuses.values()) == {"COMPLETED"}, (
        statuses)
    events = _events(log)
    starts = [(e["who"], e["trial"]) for e in events if e["event"] == "start"]
    assert ("tuner1", victim["trial"]) in starts
    assert sorted({t for _, t in starts}) == sorted(trials)
    assert {e["who"] for e in events if e["event"] == "done"} == {
        "chief", "tuner1"}


# `ktk.tuning.search` with learning-curve pruning, distributed: workers
# report each epoch to the chief, whose oracle prunes. A callback logs each
# training's start (with the trial's learning rate) and its epochs.
PRUNE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import keras
    import keras_training_kit as ktk
    from keras_training_kit.tuning.distributed import role

    log, directory, prune = sys.argv[1:4]

    def write(**event):
        with open(log, "a") as f:
            f.write(json.dumps({"who": role(), "pid": os.getpid(), **event}))
            f.write("\\n")

    def build(hp):
        lr = hp.Choice("lr", [0.05, 0.04, 0.03, 1e-5, 2e-5, 3e-5, 0.02])
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(lr), "mse", run_eagerly=True)
        return model

    class Log(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            write(event="start", lr=float(self.model.optimizer.learning_rate))

        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.2)

    rng = np.random.RandomState(0)
    x = rng.randn(160, 3).astype("float32")
    y = x @ np.array([[1.0], [-1.0], [0.5]], "float32")
    # 15 steps an epoch: a useful learning rate is far ahead after one.
    result = ktk.tuning.search(
        build, x, y, strategy="grid", max_trials=7, epochs=6,
        validation_split=0.25, directory=directory, seed=1, verbose=0,
        prune=prune, callbacks=[Log()], batch_size=8,
    )
    write(event="done", statuses={
        str(t["hyperparameters"]["lr"]): t["status"] for t in result.trials
    }, best=str((result.best_hyperparameters or {}).get("lr")))
    """
)


@pytest.mark.slow
def test_distributed_pruning_survives_a_killed_worker(tmp_path):
    script = tmp_path / "prune_search.py"
    script.write_text(PRUNE_SCRIPT)
    log, directory = str(tmp_path / "log.jsonl"), str(tmp_path / "runs")
    proc = _tune(2, script, log, directory, "asha")
    try:
        # Kill a worker in the middle of its third training (whichever
        # gets there: under load one worker may run most trials).
        victim = _wait(_nth_start(log, 3, who=None), 180, proc)
        finished_before = {
            t for t, rec in _trial_files(directory, "grid").items()
            if rec["status"] == "COMPLETED"
        }
        output = _kill_worker(proc, victim)
    finally:
        _reap(proc)
    assert f"worker {victim['who']} exited with code 137" in output, (
        output[-3000:])
    trials = _trial_files(directory, "grid")
    assert len(trials) == 7
    statuses = {t: rec["status"] for t, rec in trials.items()}
    assert set(statuses.values()) == {"COMPLETED"}, str(statuses)
    assert finished_before <= set(trials)
    done = [e for e in _events(log) if e["event"] == "done"]
    chief = next(e for e in done if e["who"] == "chief")["statuses"]
    assert len(chief) == 7
    assert set(chief.values()) <= {"completed", "pruned"}, chief
    # ASHA: the learning rates too small to learn stop at the first rung.
    # Which useful one completes depends on which worker reports a rung
    # first (a trial alone at a rung goes on only when it is the best so
    # far), but the best trial is always a useful one that completed.
    assert [chief[str(lr)] for lr in (1e-5, 2e-5, 3e-5)] == ["pruned"] * 3
    useful = {str(lr) for lr in (0.05, 0.04, 0.03, 0.02)}
    assert "completed" in {chief[lr] for lr in useful}, chief
    best = next(e for e in done if e["who"] == "chief")["best"]
    assert best in useful and chief[best] == "completed", (best, chief)
    # Each learning rate trained once, but the killed trial twice.
    starts = [round(e["lr"], 7) for e in _events(log)
              if e["event"] == "start"]
    assert len(set(starts)) == 7
    assert len(starts) == 8 and starts.count(round(victim["lr"], 7)) == 2


def test_role_reads_keras_tuner_variables(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    assert role() == "single"
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    assert role() == "tuner3"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert role() == "chief"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"workers": 0}, "workers"),
        ({"port": 70000}, "port"),
        ({"threads_per_worker": 0}, "threads_per_worker"),
        ({"timeout": -1}, "timeout"),
        ({"script_args": "--epochs 3"}, "script_args"),
    ],
)
def test_bad_arguments_raise_before_starting(tmp_path, script, kwargs, name):
    with pytest.raises(ValueError, match=name):
        run_workers(script, **kwargs)


def test_missing_script_is_a_value_error_and_a_cli_usage_error(tmp_path):
    missing = str(tmp_path / "nope.py")
    with pytest.raises(ValueError, match="script"):
        run_workers(missing)
    with pytest.raises(SystemExit) as info:
        cli.main(["--workers", "2", missing])
    assert info.value.code == 2


def test_cli_passes_script_arguments_through(tmp_path, monkeypatch):
    seen = {}

    def fake(script, **kwargs):
        seen.update(kwargs, script=script)
        return 0

    import keras_training_kit.tuning.distributed as distributed

    monkeypatch.setattr(distributed, "run_workers", fake)
    code = cli.main(
        ["-n", "3", "--threads-per-worker", "2", "s.py", "--epochs", "5"]
    )
    assert code == 0
    assert seen["script"] == "s.py" and seen["workers"] == 3
    assert seen["threads_per_worker"] == 2
    assert seen["script_args"] == ["--epochs", "5"]
    assert seen["host"] == "127.0.0.1"


def test_a_taken_port_fails_the_chief_instead_of_sharing_it(tmp_path, script):
    # Another process listens on the port with SO_REUSEPORT, as a second
    # gRPC chief would by gRPC's default: the chief must refuse to share
    # it (workers would otherwise talk to two oracles and the search hang).
    import socket

    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    out = io.StringIO()
    try:
        code = run_workers(
            script, workers=1, port=port, timeout=120, output=out,
            script_args=(str(tmp_path / "log.jsonl"), str(tmp_path / "runs"),
                         "random", "0"),
            env={"TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    finally:
        holder.close()
    assert code not in (0, 124), out.getvalue()[-3000:]
    # gRPC's own error, or the chief's where gRPC only returns 0.
    assert re.search(rf"(could not|Failed to) bind to (address )?127\.0\.0"
                     rf"\.1:{port}", out.getvalue()), out.getvalue()[-3000:]


def test_a_timeout_stops_everyone_and_says_where_each_one_was(tmp_path):
    script = tmp_path / "stuck.py"
    # The chief says it listens (as `serve` does once bound), so the
    # workers start; then every process hangs.
    script.write_text(textwrap.dedent(
        """
        import os, time
        if os.environ["KERASTUNER_TUNER_ID"] == "chief":
            open(os.environ["KTK_TUNE_PORT_FILE"], "w").write("1")

        def wait_for_godot():
            time.sleep(600)

        wait_for_godot()
        """
    ))
    out = io.StringIO()
    start = time.monotonic()
    # (90 s: both processes import the kit, i.e. TensorFlow, under load.)
    code = run_workers(script, workers=1, timeout=90, output=out)
    text = out.getvalue()
    assert code == 124, text
    assert time.monotonic() - start < 90 + 30  # stopped, not waited for
    assert "[ktk tune] timeout after 90 s" in text
    # Both processes printed their stacks, prefixed by their role.
    for who in ("chief", "tuner0"):
        assert re.search(rf"\[{who}\] .*line 7 in wait_for_godot", text), text


def test_a_chief_that_never_serves_is_reported_and_no_worker_starts(tmp_path):
    script = tmp_path / "no_search.py"
    script.write_text("print('no search here')\n")
    out = io.StringIO()
    code = run_workers(script, workers=2, timeout=120, output=out)
    text = out.getvalue()
    assert code != 0, text
    assert "[chief] no search here" in text
    assert "the chief exited before serving the oracle (code 0)" in text
    assert "[tuner0]" not in text and "[tuner1]" not in text
