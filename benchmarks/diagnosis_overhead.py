"""Overhead of `ktk.callbacks.TrainingDiagnosis` on `fit`.

The same fit (digits, an MLP, batch 32) without the callback, with the
loss-only callback (`gradients=False, activations=False`) and with the full
callback at its default sampling (gradient and activation probes twice per
epoch), interleaved in one process so that machine load hits all three
alike; median wall-clock ratios over the repeats.

Goals: loss-only <= 1.02, full <= 1.05, on each Keras backend (each in
its own subprocess: the backend is fixed at import).

    python benchmarks/diagnosis_overhead.py [--backend all] [--repeats 7]
        [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BACKENDS = ("tensorflow", "jax", "torch")


def data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = ((x - x.mean(0)) / (x.std(0) + 1e-6)).astype("float32")
    return x, y.astype("int32")


def build():
    import keras

    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy"
    )
    return model


def callbacks(kind: str) -> list:
    import keras_training_kit as ktk

    if kind == "none":
        return []
    if kind == "loss-only":
        return [
            ktk.callbacks.TrainingDiagnosis(
                gradients=False, activations=False, verbose=0
            )
        ]
    return [ktk.callbacks.TrainingDiagnosis(verbose=0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", default="all",
                        choices=("all",) + BACKENDS)
    args = parser.parse_args()
    if args.backend == "all":
        for backend in BACKENDS:
            env = dict(os.environ, KERAS_BACKEND=backend)
            cmd = [sys.executable, __file__, "--backend", backend,
                   "--repeats", str(args.repeats), "--epochs",
                   str(args.epochs), "--batch-size", str(args.batch_size)]
            subprocess.run(cmd, env=env, check=True)
        return
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import numpy as np

    x, y = data()
    kinds = ("none", "loss-only", "full")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    for kind in kinds:  # warm-up: tracing and first-call costs
        build().fit(x, y, epochs=1, batch_size=args.batch_size, verbose=0,
                    callbacks=callbacks(kind))
    for r in range(args.repeats):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            keras.utils.set_random_seed(r)
            model = build()
            cbs = callbacks(kind)
            model.fit(x[:64], y[:64], epochs=1, verbose=0)  # trace outside
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(x, y, epochs=args.epochs, batch_size=args.batch_size,
                      verbose=0, callbacks=cbs)
            times[kind].append(time.perf_counter() - start)
            cpu[kind].append(time.process_time() - start_cpu)
    steps = int(np.ceil(len(x) / args.batch_size))
    print(
        f"[{keras.backend.backend()}] "
        f"fit: {len(x)} digits, {args.epochs} epochs x {steps} steps, "
        f"batch {args.batch_size}, {args.repeats} interleaved repeats"
    )
    for label, table in (("wall-clock", times), ("process CPU", cpu)):
        base = statistics.median(table["none"])
        print(f"{label}: median fit without TrainingDiagnosis {base:.3f} s")
        for kind in kinds[1:]:
            med = statistics.median(table[kind])
            paired = [t / b for t, b in zip(table[kind], table["none"])]
            goal = "1.02" if kind == "loss-only" else "1.05"
            print(
                f"  {kind:>9}: median {med:.3f} s, ratio of medians "
                f"{med / base:.3f}, median paired ratio "
                f"{statistics.median(paired):.3f} (goal <= {goal})"
            )

if __name__ == "__main__":
    main()
