"""The `ktk` command line: `ktk diagnose FILE.csv`, `ktk tune --workers N ...`.

Also runnable as `python -m keras_training_kit ...`. Each subcommand lives with
its subpackage and is imported only when used.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "diagnose": (
        "keras_training_kit.diagnosis.cli",
        "diagnose a CSVLogger file",
    ),
    "tune": (
        "keras_training_kit.tuning.cli",
        "run a search with N local workers",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
        print("usage: ktk COMMAND [ARGS]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
