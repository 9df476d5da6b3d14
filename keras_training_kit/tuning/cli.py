"""`ktk tune`: run a keras-tuner search script with N local workers.

```
ktk tune --workers 2 search.py --epochs 5
python -m keras_training_kit tune --workers 2 search.py --epochs 5
```

Starts the script once as keras-tuner's chief (the oracle's gRPC server,
bound to 127.0.0.1 on a free port) and `--workers` times as a worker, with
the CPU threads split between the workers; see
`keras_training_kit.tuning.distributed.run_workers`. Everything after the
script's path is passed to the script.
"""

from __future__ import annotations

import argparse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktk tune",
        description=(
            "Run a keras-tuner search script as one chief (the oracle, "
            "bound to --host) and N worker processes on this machine."
        ),
        epilog=(
            "Across machines, start the script yourself with "
            "KERASTUNER_TUNER_ID=chief|tuner0|tuner1..., "
            "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT."
        ),
    )
    parser.add_argument(
        "--workers", "-n", type=int, default=2,
        help="number of worker processes (default: 2)",
    )
    parser.add_argument(
        "--port", type=int, default=None,
        help="the chief's port (default: a free one)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="address the chief binds to (default: 127.0.0.1)",
    )
    parser.add_argument(
        "--threads-per-worker", type=int, default=None,
        help="TensorFlow threads per worker (default: cores / workers)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None,
        help="stop everything after this many seconds",
    )
    parser.add_argument("script", help="the search script (a .py file)")
    parser.add_argument(
        "script_args", nargs=argparse.REMAINDER,
        help="arguments passed to the script",
    )
    return parser


def main(argv: list[str]) -> int:
    """Parse `ktk tune` arguments and run the search; returns the exit code."""
    from keras_training_kit.tuning.distributed import run_workers

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return run_workers(
            args.script,
            workers=args.workers,
            script_args=args.script_args,
            port=args.port,
            host=args.host,
            threads_per_worker=args.threads_per_worker,
            timeout=args.timeout,
        )
    except ValueError as e:
        parser.error(str(e))  # exits with code 2 and the usage line
    except KeyboardInterrupt:
        return 130
    return 1  # pragma: no cover - parser.error exits
