"""Cost of one `Probe` call vs one `model.train_on_batch`, per backend.

A digits MLP (64-256-256-10, relu, Adam, sparse cross-entropy), batch 64:
one probe call (forward + backward of the compiled loss, statistics,
transfer to Python) and one `train_on_batch` on the same 64 examples,
interleaved in one process (alternating which goes first), after a
warm-up of both; the ratio is the median of the paired per-repeat ratios.

    python benchmarks/probe_cost.py [--repeats 200]
        [--backends tensorflow,jax,torch]

Each backend runs in its own subprocess (the backend is fixed at import).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def measure(repeats: int) -> dict:
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    from keras_training_kit.diagnosis.probe import Probe

    x, y = load_digits(return_X_y=True)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-6)).astype("float32")[:64]
    y = y.astype("int32")[:64]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3),
                  "sparse_categorical_crossentropy")
    probe = Probe(model)
    for _ in range(5):  # tracing and first-call costs
        model.train_on_batch(x, y)
        probe(x, y)
    ratios, t_probe, t_train = [], [], []
    for r in range(repeats):
        order = ("probe", "train") if r % 2 == 0 else ("train", "probe")
        took = {}
        for what in order:
            start = time.perf_counter()
            if what == "probe":
                probe(x, y)
            else:
                model.train_on_batch(x, y)
            took[what] = time.perf_counter() - start
        ratios.append(took["probe"] / took["train"])
        t_probe.append(took["probe"])
        t_train.append(took["train"])
    return {
        "backend": keras.backend.backend(),
        "probe_ms": 1e3 * statistics.median(t_probe),
        "train_on_batch_ms": 1e3 * statistics.median(t_train),
        "ratio": statistics.median(ratios),
        "traces": probe.traces,
        "notes": probe.notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.repeats)))
        return
    print(f"{'backend':<11} {'probe ms':>9} {'train_on_batch ms':>18} "
          f"{'ratio (paired median)':>22}")
    for backend in args.backends.split(","):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--repeats",
             str(args.repeats)],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"{r['backend']:<11} {r['probe_ms']:>9.2f} "
              f"{r['train_on_batch_ms']:>18.2f} {r['ratio']:>22.2f}")


if __name__ == "__main__":
    main()
