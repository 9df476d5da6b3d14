"""Time of one optimizer update: kit vs the Keras built-in doing the same math.

For each kit optimizer and its Keras twin, in one process, interleaved:
one `apply` over N float32 parameters (N = 1M and 32M, as one variable and
as 100 variables), inside a `tf.function` with and without
`jit_compile=True`. Prints the median time, the kit/keras ratio, and the
ratio of the kit's time to a memory-traffic floor: the bytes the update must
read and write (gradient, weights and slots, each once) divided by the
measured bandwidth of an XLA-fused in-place `dst += src` (read two arrays,
write one).

    python benchmarks/optimizer_step.py            # full table
    python benchmarks/optimizer_step.py --quick    # N = 1M only
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

# name, kit factory, Keras factory, arrays the update touches (read + write)
PAIRS = [
    ("SGD", lambda: ktk.optimizers.SGD(0.01),
     lambda: keras.optimizers.SGD(0.01), 3),
    ("Momentum", lambda: ktk.optimizers.Momentum(0.01, 0.9),
     lambda: keras.optimizers.SGD(0.01, momentum=0.9), 5),
    ("Momentum(ema)", lambda: ktk.optimizers.Momentum(0.01, 0.9, ema=True),
     lambda: keras.optimizers.SGD(0.01, momentum=0.9), 5),
    ("Nesterov", lambda: ktk.optimizers.Momentum(0.01, 0.9, nesterov=True),
     lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True), 5),
    ("Adagrad", lambda: ktk.optimizers.Adagrad(0.01),
     lambda: keras.optimizers.Adagrad(0.01), 5),
    ("RMSProp", lambda: ktk.optimizers.RMSProp(0.001),
     lambda: keras.optimizers.RMSprop(0.001), 5),
    ("Adam", lambda: ktk.optimizers.Adam(0.001),
     lambda: keras.optimizers.Adam(0.001), 7),
    ("Adam(amsgrad)", lambda: ktk.optimizers.Adam(0.001, amsgrad=True),
     lambda: keras.optimizers.Adam(0.001, amsgrad=True), 9),
]


def _step_fn(make, total, pieces, jit):
    size = total // pieces
    variables = [
        keras.Variable(tf.random.normal([size])) for _ in range(pieces)
    ]
    grads = [tf.random.normal([size]) * 0.01 for _ in range(pieces)]
    optimizer = make()
    optimizer.build(variables)

    @tf.function(jit_compile=jit)
    def step():
        optimizer.apply(grads, variables)

    step()  # trace, compile, build slots
    step()
    return step


def _time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def copy_bandwidth(total, repeats=15):
    """Bytes per second of the simplest in-place streaming update.

    `dst += src` under XLA reads two arrays and writes one, in place, like
    an optimizer update: the best a memory-bound update can do.
    """
    src = tf.Variable(tf.random.normal([total]))
    dst = tf.Variable(tf.zeros([total]))

    @tf.function(jit_compile=True)
    def stream():
        dst.assign_add(src)

    stream()
    return 12.0 * total / statistics.median(_time(stream, repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1M only")
    parser.add_argument("--large", action="store_true", help="N = 32M only")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default=None, help="comma-separated names")
    args = parser.parse_args(argv)
    sizes = [1_000_000, 32_000_000]
    if args.quick or args.large:
        sizes = [32_000_000] if args.large else [1_000_000]
    pairs = [p for p in PAIRS if not args.only or p[0] in args.only.split(",")]

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU cores; medians of {args.repeats} interleaved "
          "runs, milliseconds")
    print("goal without XLA: kit <= max(0.5 x keras, 1.2 x keras with XLA); "
          "with XLA: kit/keras <= 1.05 and, at 32M, kit/floor <= 1.2")
    header = (f"{'optimizer':<14}{'N':>4}{'vars':>5} |{'kit':>7}{'keras':>7}"
              f"{'ratio':>6}{'goal':>7} |{'kit':>6}{'keras':>7}{'ratio':>6}"
              f"{'floor':>6}{'k/fl':>6}")
    rows = []
    for total in sizes:
        bandwidth = copy_bandwidth(total)
        print(f"\nN={total / 1e6:.0f}M, streaming bandwidth (dst += src) "
              f"{bandwidth / 1e9:.1f} GB/s   (left: no XLA | right: XLA)")
        print(header)
        for name, kit, builtin, arrays in pairs:
            floor = arrays * 4.0 * total / bandwidth
            for pieces in (1, 100):
                fns = {
                    (who, jit): _step_fn(make, total, pieces, jit)
                    for who, make in (("kit", kit), ("keras", builtin))
                    for jit in (False, True)
                }
                times = {key: [] for key in fns}
                for _ in range(args.repeats):  # interleaved
                    for key, fn in fns.items():
                        times[key] += _time(fn, 1)
                t = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                goal = max(0.5 * t["keras", False], 1.2 * t["keras", True])
                row = dict(
                    optimizer=name, n=total, variables=pieces,
                    kit=t["kit", False], keras=t["keras", False], goal=goal,
                    kit_xla=t["kit", True], keras_xla=t["keras", True],
                    floor=floor * 1e3,
                )
                rows.append(row)
                print(f"{name:<14}{total / 1e6:>3.0f}M{pieces:>5} |"
                      f"{row['kit']:>7.2f}{row['keras']:>7.2f}"
                      f"{row['kit'] / row['keras']:>6.2f}"
                      f"{'ok' if row['kit'] <= goal else 'MISS':>7} |"
                      f"{row['kit_xla']:>6.2f}{row['keras_xla']:>7.2f}"
                      f"{row['kit_xla'] / row['keras_xla']:>6.2f}"
                      f"{row['floor']:>6.2f}"
                      f"{row['kit_xla'] / row['floor']:>6.2f}", flush=True)
                del fns  # 32M-value configs hold GBs: free before the next
                keras.backend.clear_session()
                gc.collect()
    return rows


if __name__ == "__main__":
    main()
