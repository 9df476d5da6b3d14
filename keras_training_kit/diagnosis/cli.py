"""`ktk diagnose FILE.csv`: diagnose a `keras.callbacks.CSVLogger` file.

Prints the findings with their numbers and remedies and writes a PNG of the
curves with the findings marked (next to the CSV unless `--plot` says
where). Exit status: 0 when the run was diagnosed (healthy or not), 2 when
the file cannot be used.
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
    return parser


def main(argv: list[str]) -> int:
    """Runs `ktk diagnose` with the given arguments; returns the exit code."""
    args = _parser().parse_args(argv)
    from keras_training_kit.diagnosis.analysis import analyze, read_csv_log

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
    found = analyze(history, args.baseline_loss)
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
    return 0
