"""keras-tuner's distributed (chief/worker) search, started for you.

keras-tuner already knows how to spread one search over many processes: the
same script is started once as the *chief*, which serves the oracle over gRPC
and blocks, and once per *worker*, each of which asks the chief for a trial,
trains it and reports back. Three environment variables select the role:

```
KERASTUNER_TUNER_ID     "chief" for the oracle server, a unique name
                        ("tuner0", "tuner1", ...) for each worker
KERASTUNER_ORACLE_IP    the address the chief binds to / workers dial
KERASTUNER_ORACLE_PORT  its port
```

`run_workers` does this on one machine: the chief binds 127.0.0.1 on a free
port of its choosing, and once it listens `workers` worker processes start
(none dials a port nobody serves); it splits the CPU threads between
them so they do not oversubscribe the cores, streams their output with a
`[chief]` / `[tuner0]` prefix and cleans up every child on error or Ctrl-C.
`ktk tune --workers N script.py ARGS` is the same from the shell.

Across machines, run the same script by hand (nothing here is needed):

```
# machine A (10.0.0.1), the chief: serves the oracle, runs no trial
KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=0.0.0.0 \\
KERASTUNER_ORACLE_PORT=8000 python search.py
# machines B, C, ...: one worker each (or several, with distinct ids)
KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=10.0.0.1 \\
KERASTUNER_ORACLE_PORT=8000 python search.py
```

The gRPC channel is unauthenticated and unencrypted: keep the port inside a
private network. `directory` must be shared storage (NFS, GCS) when the
workers save checkpoints that the chief's `best_model()` loads.

When a worker started by `run_workers` dies (crash, OOM kill, SIGKILL), its
finished trials are already with the chief; the trial it was running is
handed back to the oracle's retry queue, so a surviving worker runs it again.
The chief saves the oracle after every trial, so a search whose chief dies
resumes when started again with the same `directory` and `overwrite=False`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Mapping, Sequence, TextIO

from keras_training_kit import _validation as v
from keras_training_kit.tuning import _chief

_POLL_S = 0.1
_CHIEF_GRACE_S = 10.0


def role() -> str:
    """This process' role: `"chief"`, a worker id, or `"single"`.

    Scripts use it to run code once after `tuner.search()` returns (e.g.
    printing the best model only on the chief).
    """
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    if "KERASTUNER_ORACLE_IP" not in os.environ or tuner_id is None:
        return "single"
    return "chief" if "chief" in tuner_id else tuner_id


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _thread_env(threads: int) -> dict[str, str]:
    # TensorFlow reads the first two when its runtime starts; OpenMP/MKL
    # kernels (oneDNN) the third.
    return {
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(min(2, threads)),
        "OMP_NUM_THREADS": str(threads),
    }


def _pump(name: str, stream, out: TextIO, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            out.write(f"[{name}] {line}")
            if not line.endswith("\n"):
                out.write("\n")
            out.flush()
    stream.close()


def _exit_code(code: int | None) -> int:
    if code is None:
        return 1
    return 128 - code if code < 0 else code  # shell convention for signals


def _stop(procs: Sequence[subprocess.Popen], grace: float = 5.0) -> None:
    """Terminate, then kill, the children still running (ours only)."""
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:  # pragma: no cover - raced to exit
            pass
    deadline = time.monotonic() + grace
    for p in alive:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_workers(
    script: str | os.PathLike,
    workers: int = 2,
    script_args: Sequence[str] = (),
    port: int | None = None,
    host: str = "127.0.0.1",
    threads_per_worker: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    output: TextIO | None = None,
) -> int:
    """Run a keras-tuner search script as one chief and `workers` workers.

    The script is an ordinary search script (`tuner.search(...)` or
    `ktk.tuning.search(...)`) with a fixed `directory` and
    `overwrite=False`; keras-tuner reads its role from the environment
    variables this function sets:

    ```
    chief:    KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=host
              KERASTUNER_ORACLE_PORT=port
    worker i: KERASTUNER_TUNER_ID=tuner{i}, same IP and port
    threads:  TF_NUM_INTRAOP_THREADS = OMP_NUM_THREADS = threads_per_worker
    ```

    The chief binds to `host` only (loopback by default: nothing outside
    this machine can reach the oracle). Every process' output is streamed
    with its role as prefix. When all workers have exited, the chief gets
    `10` s to finish, then is stopped (its state is saved after every
    trial). A worker that dies gives its running trial back to the oracle,
    which hands it to a surviving worker, or, when none is left, to a
    worker started in its place (at most `workers` such replacements).

    Args:
        script: Path of the Python search script.
        workers: Number of worker processes. Defaults to `2`.
        script_args: Command-line arguments passed to every copy of the
            script. Defaults to `()`.
        port: The chief's port; `None` lets the chief bind a free one.
            Defaults to `None`.
        host: The address the chief binds to and workers dial. Defaults to
            `"127.0.0.1"`.
        threads_per_worker: TensorFlow/OpenMP threads of each worker;
            `None` splits this machine's cores evenly (at least 1).
            Defaults to `None`.
        env: Extra environment variables for every process. Defaults to
            `None`.
        timeout: Seconds before everything is stopped (each process first
            prints its threads' stacks) and `124` returned;
            `None` waits forever. Defaults to `None`.
        output: Where the prefixed output goes. Defaults to `sys.stdout`.

    Returns:
        `0` when the chief and every worker exited cleanly, else the first
        non-zero exit code (`128 + signal` for a killed process, `124` on
        timeout; a chief that exits before serving the oracle, e.g. a
        script that never calls `search`, returns its code or `1`).

    Example (a chief and two workers on one machine; `search.py` is a
    script that calls `ktk.tuning.search(..., directory=...)`; the test
    suite runs it in `tests/tuning/test_distributed.py`):

    >>> import keras_training_kit as ktk
    >>> ktk.tuning.run_workers("no_such_script.py", workers=2)
    Traceback (most recent call last):
    ...
    ValueError: Argument `script` must be an existing Python file. Received: script='no_such_script.py'
    """
    script = os.fspath(script)
    if not os.path.isfile(script):
        raise ValueError(
            f"Argument `script` must be an existing Python file. "
            f"Received: script={script!r}"
        )
    workers = v.check_positive_int("workers", workers)
    if port is not None:
        port = v.check_positive_int("port", port)
        v.check_range("port", port, 1, 65535)
    if threads_per_worker is not None:
        v.check_positive_int("threads_per_worker", threads_per_worker)
    if timeout is not None:
        v.check_positive("timeout", timeout)
    if isinstance(script_args, (str, bytes)):
        raise ValueError(
            "Argument `script_args` must be a sequence of strings. "
            f"Received: script_args={script_args!r}"
        )
    out = output or sys.stdout
    threads = threads_per_worker or max(1, _cpu_count() // workers)

    fd, port_file = tempfile.mkstemp(prefix="ktk_tune_port_")
    os.close(fd)
    os.unlink(port_file)  # the chief creates it once it listens
    base = dict(os.environ)
    base.update(env or {})
    # Port 0: the chief binds a free port itself (no window in which another
    # process takes a port picked in advance).
    base.update(KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=str(port or 0))
    base.setdefault("PYTHONUNBUFFERED", "1")
    launcher = "from keras_training_kit.tuning._chief import main; main()"
    cmd = [sys.executable, "-c", launcher, script, *map(str, script_args)]

    lock = threading.Lock()
    procs: dict[str, subprocess.Popen] = {}
    pumps = []

    def start(name: str, threads_: int, control: bool) -> None:
        child_env = {**base, **_thread_env(threads_)}
        child_env["KERASTUNER_TUNER_ID"] = name
        if control:
            child_env[_chief.CONTROL_ENV] = "stdin"
            child_env[_chief.PORT_FILE_ENV] = port_file
        proc = subprocess.Popen(
            cmd,
            env=child_env,
            stdin=subprocess.PIPE if control else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        procs[name] = proc
        pump = threading.Thread(
            target=_pump, args=(name, proc.stdout, out, lock), daemon=True
        )
        pump.start()
        pumps.append(pump)

    deadline = None if timeout is None else time.monotonic() + timeout

    def timed_out() -> bool:
        if deadline is None or time.monotonic() <= deadline:
            return False
        with lock:
            out.write(f"[ktk tune] timeout after {timeout} s; "
                      "where each process was:\n")
        _dump_stacks(list(procs.values()))
        _stop(list(procs.values()))
        return True

    code = 0
    try:
        start("chief", 1, control=True)
        # The workers start once the chief listens: they never dial a port
        # nobody serves (gRPC's reconnect back-off would grow to minutes).
        while not os.path.exists(port_file):
            if timed_out():
                return 124
            rc = procs["chief"].poll()
            if rc is not None:
                with lock:
                    out.write("[ktk tune] the chief exited before serving the "
                              f"oracle (code {_exit_code(rc)})\n")
                return _exit_code(rc) or 1
            time.sleep(_POLL_S)
        with open(port_file) as f:
            base["KERASTUNER_ORACLE_PORT"] = f.read().strip()
        with lock:
            out.write(
                f"[ktk tune] chief on {host}:{base['KERASTUNER_ORACLE_PORT']}"
                f", {workers} worker(s) x {threads} thread(s)\n"
            )
        worker_names = [f"tuner{i}" for i in range(workers)]
        for name in worker_names:
            start(name, threads, control=False)
        reported = set()
        replacements: list[str] = []  # at most `workers` of them
        returned: list[str] = []  # dead workers no replacement covers yet
        chief_deadline = None
        while True:
            if timed_out():
                code = 124
                break
            chief = procs["chief"]
            for name in list(worker_names):
                rc = procs[name].poll()
                if rc is None or name in reported:
                    continue
                reported.add(name)
                if rc != 0:
                    code = code or _exit_code(rc)
                    with lock:
                        out.write(
                            f"[ktk tune] worker {name} exited with code "
                            f"{_exit_code(rc)}; its running trial goes "
                            "back to the oracle\n"
                        )
                    _release_on_chief(chief, name)
                    returned.append(name)
            alive = [n for n in worker_names if n not in reported]
            if (returned and not alive and chief.poll() is None
                    and len(replacements) < workers):
                # No worker left to run the returned trial (the others may
                # have been told the search is over just before the death).
                new = f"tuner{len(worker_names)}"
                with lock:
                    out.write(f"[ktk tune] starting {new} in the place of "
                              f"{returned[-1]}\n")
                start(new, threads, control=False)
                worker_names.append(new)
                replacements.append(new)
                returned.clear()
            chief_rc = chief.poll()
            if chief_rc is not None and chief_rc != 0:
                code = code or _exit_code(chief_rc)
                _stop(list(procs.values()))
                break
            alive = [n for n in worker_names if n not in reported]
            if chief_rc == 0 and alive and set(alive) <= set(replacements):
                # The search ended (nothing was left to retry) before the
                # worker started in a dead one's place connected.
                _stop([procs[n] for n in alive])
                break
            if not alive:
                if chief_rc is not None:
                    break
                chief_deadline = chief_deadline or (
                    time.monotonic() + _CHIEF_GRACE_S
                )
                if time.monotonic() > chief_deadline:
                    # Only a stuck chief gets here; its state is on disk.
                    _stop([chief])
                    break
            time.sleep(_POLL_S)
    except BaseException:
        _stop(list(procs.values()))
        raise
    finally:
        chief_proc = procs.get("chief")
        if chief_proc is not None and chief_proc.stdin is not None:
            try:
                chief_proc.stdin.close()
            except OSError:  # pragma: no cover - already closed
                pass
        for pump in pumps:
            pump.join(timeout=5.0)
        if os.path.exists(port_file):
            os.unlink(port_file)
    return code


def _dump_stacks(procs: Sequence[subprocess.Popen]) -> None:
    """Ask each live child to print its threads' stacks (see `_main`)."""
    dump = getattr(signal, "SIGUSR1", None)
    if dump is None:  # pragma: no cover - Windows
        return
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(dump)
            except ProcessLookupError:  # pragma: no cover - raced to exit
                pass
    time.sleep(1.0)  # the pumps forward the dumps


def _release_on_chief(chief: subprocess.Popen, tuner_id: str) -> None:
    if chief.poll() is not None or chief.stdin is None:
        return
    try:
        chief.stdin.write(tuner_id + "\n")
        chief.stdin.flush()
    except (BrokenPipeError, OSError):  # pragma: no cover - chief gone
        pass
