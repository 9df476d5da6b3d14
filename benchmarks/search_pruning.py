"""Learning-curve pruning: trials per hour and final best at equal time.

`ktk.tuning.search(strategy="random")` on an MLP over scikit-learn's digits
(the knobs of `search_efficiency.build_mlp`: learning rate, dropout, width,
L2; 10 epochs per trial, batch 64), run three ways with the same oracle
seed, so each mode sees the same sequence of proposed points:

- `prune=True`: divergence only (the default, "without pruning"),
- `prune="median"`: Optuna's `MedianPruner` on the validation loss,
- `prune="asha"`: Optuna's `SuccessiveHalvingPruner` (ASHA).

For each seed the unpruned search runs `--trials` trials; its wall time is
the budget T. The pruned searches run more trials, and only the trials that
ended within T of their search's start count: trials per hour = trials
ended by T / T, final best = the best validation loss among the completed
(not pruned) trials ended by T. Modes are interleaved, their order rotated
per seed, and the table prints paired medians over seeds, with the ratio to
the unpruned run of the same seed. Goal: >= 1.5x the trials per hour with
an equal or better final best.

Pruning saves epochs, not the fixed cost of a trial (building, tracing,
keras-tuner's two garbage collections, the oracle's bookkeeping): it pays
when epochs dominate a trial. `--batch-size 16` makes them 4x longer than
the default 64. `MedianPruner` prunes nothing before 5 trials have
finished, so budgets of a few trials cannot show it.

Usage:

    python benchmarks/search_pruning.py --quick   # 2 seeds, a few minutes
    python benchmarks/search_pruning.py --seeds 5 --trials 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import search_efficiency as bench  # noqa: E402

MODES = (True, "median", "asha")
EPOCHS = 10


class _Clock(keras.callbacks.Callback):
    """End time and epochs of every trial's `fit` (one trial at a time)."""

    def __init__(self, ends: list):
        super().__init__()
        self.ends = ends
        self.epochs = 0

    def on_train_begin(self, logs=None):
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1

    def on_train_end(self, logs=None):
        self.ends.append((time.perf_counter(), self.epochs))

    def __deepcopy__(self, memo):  # keras-tuner copies callbacks per trial
        return self


def run(mode, trials, seed, data, directory, batch_size):
    (x, y), val = data
    ends: list = []
    t0 = time.perf_counter()
    result = ktk.tuning.search(
        bench.build_mlp, x, y, strategy="random", objective="val_loss",
        max_trials=trials, validation_data=val, epochs=EPOCHS, seed=seed,
        directory=directory, overwrite=True, prune=mode, verbose=0,
        batch_size=batch_size, callbacks=[_Clock(ends)],
    )
    rows = [
        (end - t0, t["status"], t["score"], epochs)
        for (end, epochs), t in zip(ends, result.trials)
    ]
    return rows, time.perf_counter() - t0


def summarize(rows, budget):
    within = [r for r in rows if r[0] <= budget]
    done = [s for _, status, s, _ in within if status == "completed"]
    best = min(done) if done else float("nan")
    epochs = sum(e for *_, e in within)
    return len(within) / budget * 3600.0, best, len(within), epochs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None,
                        help="trials of the unpruned search per seed")
    parser.add_argument(
        "--batch-size", type=int, default=bench.BATCH,
        help="smaller batches make epochs, not trial set-up, dominate",
    )
    args = parser.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 5)
    trials = args.trials or (12 if args.quick else 20)
    data = bench.digits()
    print(
        f"keras {keras.__version__}, {len(os.sched_getaffinity(0))} cores; "
        f"random search, {EPOCHS} epochs/trial, {trials} unpruned trials "
        f"per seed, {seeds} seeds (machine load: see `uptime`: "
        f"{os.getloadavg()[0]:.1f})"
    )
    stats = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as d:
        for s in range(seeds):
            seed = 11 + 97 * s
            order = MODES[s % 3:] + MODES[: s % 3]
            runs = {}
            # The unpruned run sets the time budget, so it goes first, then
            # the pruned ones in rotated order.
            bs = args.batch_size
            runs[True] = run(True, trials, seed, data, f"{d}/off{s}", bs)
            budget = runs[True][1]
            for mode in [m for m in order if m is not True]:
                runs[mode] = run(
                    mode, 3 * trials, seed, data, f"{d}/{mode}{s}", bs
                )
            for mode in MODES:
                rate, best, n, epochs = summarize(runs[mode][0], budget)
                stats[mode].append((rate, best, n, epochs))
            line = ", ".join(
                f"{'off' if m is True else m}: {stats[m][-1][2]} trials "
                f"({stats[m][-1][3]} epochs), best {stats[m][-1][1]:.4f}"
                for m in MODES
            )
            print(f"seed {seed}: T = {budget:.0f} s; {line}", flush=True)
    print(
        f"\n{'prune':<10}{'trials/hour':>13}{'x vs off':>10}"
        f"{'final best':>12}{'best - off':>12}"
    )
    for mode in MODES:
        rates = [r for r, _, _, _ in stats[mode]]
        bests = [b for _, b, _, _ in stats[mode]]
        ratio = statistics.median(
            r / o[0] for r, o in zip(rates, stats[True])
        )
        delta = statistics.median(
            b - o[1] for b, o in zip(bests, stats[True])
        )
        name = "off" if mode is True else mode
        print(
            f"{name:<10}{statistics.median(rates):>13.0f}{ratio:>10.2f}"
            f"{statistics.median(bests):>12.4f}{delta:>+12.4f}"
        )
    print("(goal: >= 1.5x trials/hour, best - off <= 0; paired medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
