"""`ktk diagnose FILE.csv`: diagnose a `keras.callbacks.CSVLogger` file.

Prints the findings with their numbers and remedies (or, with `--json`,
the findings as JSON) and writes a PNG of the curves with the findings
marked (next to the CSV unless `--plot` says where). Exit status, so that
it can gate CI: 1 when a finding at or above `--fail-on` (default
`error`; `warning`, or `never`) was found, 0 otherwise, 2 when the file
cannot be used. Reading a CSV never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktk diagnose",
        description="Diagnose a training run from a keras CSVLogger file.",
    )
    parser.add_argument("csv", help="the CSVLogger file")
    parser.add_argument(
        "--baseline-loss",
        type=float,
        default=None,
        help="the constant predictor's loss (class-prior cross-entropy, "
        "or the target variance for MSE)",
    )
    parser.add_argument(
        "--plot",
        default=None,
        help="PNG path for the curves (default: next to the CSV)",
    )
    parser.add_argument(
        "--no-plot", action="store_true", help="do not write a PNG"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the findings as JSON"
    )
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning", "never"),
        default="error",
        help="exit 1 when a finding of this severity or worse is found "
        "(default: error)",
    )
    return parser


def main(argv: list[str]) -> int:
    """Runs `ktk diagnose` with the given arguments; returns the exit code."""
    args = _parser().parse_args(argv)
    from keras_training_kit.diagnosis.analysis import diagnose
    from keras_training_kit.diagnosis.history import read_csv_log

    try:
        if args.baseline_loss is not None and not args.baseline_loss > 0:
            raise ValueError(
                "Argument `--baseline-loss` must be > 0. Received: "
                f"{args.baseline_loss}"
            )
        history = read_csv_log(args.csv)
    except ValueError as e:
        print(f"ktk diagnose: error: {e}", file=sys.stderr)
        return 2
    found = diagnose(history, args.baseline_loss)
    if args.json:
        import json

        print(json.dumps(found.to_dict(), indent=2))
    else:
        print(found.report())
    if not args.no_plot:
        from keras_training_kit.diagnosis.plot import plot_findings

        path = args.plot or os.path.splitext(args.csv)[0] + ".png"
        plot_findings(history, found, path, title=os.path.basename(args.csv))
        print(f"Plot: {path}", file=sys.stderr if args.json else sys.stdout)
    failing = {"error": ("error",), "warning": ("error", "warning"),
               "never": ()}[args.fail_on]
    return int(any(f.severity in failing for f in found))
