"""The launched processes' side of `run_workers` (chief and workers).

`run_workers` starts every process with `python -c "...; main()"`:
`main` installs a stack dump on SIGUSR1 and, on the chief, replaces
keras-tuner's `start_server` with `serve`, then runs the user's script.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

# Set in the chief's environment by `run_workers`: the parent writes the
# ids of dead workers on the chief's stdin ...
CONTROL_ENV = "KTK_TUNE_CONTROL"
# ... and reads the port the chief listens on from this file.
PORT_FILE_ENV = "KTK_TUNE_PORT_FILE"
_POLL_S = 0.1


def release_worker(oracle, tuner_id: str) -> None:
    """Forget a dead worker and queue its unfinished trial for a retry."""
    import keras_tuner

    from keras_training_kit import _compat

    @keras_tuner.synchronized
    def release(oracle):
        oracle.tuner_ids.discard(tuner_id)
        trial = oracle.ongoing_trials.pop(tuner_id, None)
        if trial is not None and trial.trial_id not in oracle.end_order:
            _compat.kt_retry_queue(oracle).append(trial.trial_id)
            oracle.save()

    release(oracle)


def serve(oracle) -> None:
    """keras-tuner's `start_server`, quicker to exit and worker-aware.

    Same gRPC servicer; it polls every 0.1 s instead of every 20 s for the
    end of the search, and under `run_workers` it binds the port the
    launcher gave (`0`: any free one, no race with other processes for a
    port picked in advance), tells the launcher which port it listens on
    (the workers start only then: they never dial a port nobody listens
    on) and reads dead workers' ids on stdin to give their running trials
    back to the oracle.
    """
    from concurrent import futures

    import grpc

    from keras_training_kit import _compat

    protos, oracle_chief = _compat.kt_chief_parts()

    host = os.environ["KERASTUNER_ORACLE_IP"]
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    # gRPC sets SO_REUSEPORT by default: a second chief on the same port
    # (another search that drew the same free port) would then share it
    # silently, and the workers' calls would be split between two oracles.
    # Without it a taken port fails the bind below, loudly.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=1),
        options=[("grpc.so_reuseport", 0)],
    )
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"The chief could not bind to {host}:{port}.")
    server.start()
    os.environ["KERASTUNER_ORACLE_PORT"] = str(bound)
    port_file = os.environ.get(PORT_FILE_ENV)
    if port_file:
        with open(port_file + ".tmp", "w") as f:
            f.write(str(bound))
        os.replace(port_file + ".tmp", port_file)  # never read half-written
    controlled = os.environ.get(CONTROL_ENV) == "stdin"
    if controlled:

        def control():
            for line in sys.stdin:
                if line.strip():
                    release_worker(oracle, line.strip())

        threading.Thread(target=control, daemon=True).start()
    while not (
        servicer.stop_triggered
        and oracle_chief.exit_chief(oracle)
        # under `run_workers` a dead worker's trial waits for the worker
        # started in its place, even when no other worker is left
        and not (controlled and _compat.kt_retry_queue(oracle))
    ):
        time.sleep(_POLL_S)
    server.stop(grace=1.0)


def main() -> None:
    """Entry point of each launched process: set threads, run the script."""
    import runpy

    script, args = sys.argv[1], sys.argv[2:]
    if hasattr(signal, "SIGUSR1"):
        import faulthandler

        # A timed-out `run_workers` sends SIGUSR1 before stopping us: every
        # thread's stack goes to the (prefixed) output, so a hang says where.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    if os.environ.get("KERASTUNER_TUNER_ID") == "chief":
        from keras_training_kit import _compat

        _compat.kt_patch_start_server(serve)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
