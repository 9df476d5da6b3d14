"""Step time of the kit's BatchNormalization and Dropout vs Keras' own.

For each layer, shape and compilation mode, one training step is timed:
forward pass with `training=True`, a scalar loss, and the gradients with
respect to the input and the layer's trainable weights (what `fit` does
around the layer). Kit and Keras layers run side by side in one process,
interleaved repeat by repeat so that load on a shared machine hits both
alike; the table reports medians, their ratio kit / Keras, and the median
of the per-repeat (paired) ratios, the steadier of the two on a loaded
machine (goal <= 1.10).

Usage:

    python benchmarks/layers.py                 # full run
    python benchmarks/layers.py --quick         # fewer repeats, small shapes
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

SHAPES = {"dense": (1024, 512), "conv": (64, 32, 32, 64)}
QUICK_SHAPES = {"dense": (256, 128), "conv": (16, 16, 16, 32)}
LAYERS = {
    "BatchNormalization": (
        lambda: ktk.layers.BatchNormalization(),
        lambda: keras.layers.BatchNormalization(),
    ),
    "Dropout": (
        lambda: ktk.layers.Dropout(0.5, seed=1),
        lambda: keras.layers.Dropout(0.5, seed=1),
    ),
}


def make_step(layer: keras.layers.Layer, shape: tuple, jit: bool):
    """A compiled forward + backward step of `layer` on a fixed input."""
    layer.build(shape)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    upstream = tf.constant(rng.normal(size=shape).astype("float32"))
    weights = layer.trainable_weights

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        return tape.gradient(loss, [x] + weights)

    return step


def time_step(step, iters: int) -> float:
    """Seconds per step, forcing the results to be computed."""
    start = time.perf_counter()
    for _ in range(iters):
        out = step()
    for t in out:
        t.numpy()
    return (time.perf_counter() - start) / iters


def bench(name: str, kind: str, shape: tuple, jit: bool, repeats: int,
          iters: int) -> dict:
    make_kit, make_keras = LAYERS[name]
    steps = {
        "kit": make_step(make_kit(), shape, jit),
        "keras": make_step(make_keras(), shape, jit),
    }
    for step in steps.values():  # trace, compile and warm up
        time_step(step, 2)
    # Slow cases (XLA's CPU random bits) get fewer steps per timing.
    per_step = max(time_step(s, 1) for s in steps.values())
    iters = max(1, min(iters, int(0.25 / per_step)))
    if per_step > 1.0:
        repeats = min(repeats, 5)
    times: dict[str, list[float]] = {"kit": [], "keras": []}
    for r in range(repeats):
        # Alternate which goes first, so neither always follows the other.
        order = ("kit", "keras") if r % 2 == 0 else ("keras", "kit")
        for who in order:
            times[who].append(time_step(steps[who], iters))
    kit = statistics.median(times["kit"])
    ref = statistics.median(times["keras"])
    # Paired ratios: each repeat times both back to back, so a load change
    # between repeats cancels out of the ratio.
    paired = statistics.median(
        a / b for a, b in zip(times["kit"], times["keras"])
    )
    return {"layer": name, "kind": kind, "shape": shape, "jit": jit,
            "kit_ms": 1e3 * kit, "keras_ms": 1e3 * ref, "ratio": kit / ref,
            "paired_ratio": paired}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--iters", type=int, default=10,
                        help="steps per timing (fewer for slow cases)")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes and few repeats (smoke test)")
    parser.add_argument("--layers", nargs="*", default=list(LAYERS),
                        choices=list(LAYERS))
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeats = 3 if args.quick else args.repeats
    iters = 2 if args.quick else args.iters
    rows = []
    header = (f"{'layer':<19} {'input':<22} {'jit':<5} {'kit ms':>9} "
              f"{'keras ms':>9} {'kit/keras':>9} {'paired':>7}")
    print(f"device: {tf.config.list_logical_devices()[0].device_type}, "
          f"median of {repeats} repeats x up to {iters} steps")
    print(header)
    print("-" * len(header))
    for name in args.layers:
        for kind, shape in shapes.items():
            for jit in (False, True):
                row = bench(name, kind, shape, jit, repeats, iters)
                rows.append(row)
                print(f"{name:<19} {kind + str(shape):<22} {str(jit):<5} "
                      f"{row['kit_ms']:>9.3f} {row['keras_ms']:>9.3f} "
                      f"{row['ratio']:>9.3f} {row['paired_ratio']:>7.3f}",
                      flush=True)
    worst = max(r["paired_ratio"] for r in rows)
    print(f"worst paired ratio: {worst:.3f} (goal <= 1.10); kit/keras is "
          "the ratio of the medians, paired the median of per-repeat ratios")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
