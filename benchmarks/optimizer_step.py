"""Time of one optimizer update: kit vs the Keras built-in doing the same math.

For each kit optimizer and its Keras twin, in one process, interleaved:
one `apply` over N float32 parameters (N = 1M and 32M, as one variable and
as 100 variables).

- TensorFlow (default): inside a `tf.function` with and without
  `jit_compile=True`. Prints the median time, the kit/keras ratio, and the
  ratio of the kit's time to a memory-traffic floor: the bytes the update
  must read and write (gradient, weights and slots, each once) divided by
  the measured bandwidth of an XLA-fused in-place `dst += src` (read two
  arrays, write one).
- `--backend jax`: `stateless_apply` under `jax.jit` (how `fit` runs it).
- `--backend torch`: eager `apply` (how `fit` runs it on torch; the kit's
  `torch._foreach_*` path vs Keras' own).

Goal: no row slower than the Keras built-in (ratio <= 1.00). Each backend
runs in its own process (`--backend all` starts one per backend). Timing
(`_timing.py`): each sample is a block of steps lasting >= 50 ms, the
contenders interleaved in a rotating order, the ratio the median of the
paired per-round ratios, and an A/A control (a second copy of the Keras
built-in) in the same rounds: "noise" marks a ratio above 1.00 by less
than the control's distance from 1.00, "SLOWER" one beyond it.

    python benchmarks/optimizer_step.py                  # TensorFlow table
    python benchmarks/optimizer_step.py --quick          # N = 1M only
    python benchmarks/optimizer_step.py --backend all --quick
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "--backend" in sys.argv:  # fixed at import: set before importing keras
    _b = sys.argv[sys.argv.index("--backend") + 1]
    if _b != "all":
        os.environ["KERAS_BACKEND"] = _b

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing  # noqa: E402

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
    import tensorflow as tf

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
    import tensorflow as tf

    src = tf.Variable(tf.random.normal([total]))
    dst = tf.Variable(tf.zeros([total]))

    @tf.function(jit_compile=True)
    def stream():
        dst.assign_add(src)

    stream()
    return 12.0 * total / statistics.median(_time(stream, repeats))


def _other_backend_step(make, total, pieces):
    """One update as `fit` runs it: jitted `stateless_apply` on JAX, eager
    `apply` on torch. Returns a function that runs and waits for it."""
    rng = np.random.default_rng(0)
    size = total // pieces
    variables = [keras.Variable(rng.normal(size=size).astype("float32"))
                 for _ in range(pieces)]
    grads = [keras.ops.convert_to_tensor(
        rng.normal(size=size).astype("float32") * 0.01)
        for _ in range(pieces)]
    optimizer = make()
    optimizer.build(variables)
    if keras.backend.backend() == "jax":
        import jax

        state = {"opt": [v.value for v in optimizer.variables],
                 "train": [v.value for v in variables]}
        update = jax.jit(
            lambda o, g, t: optimizer.stateless_apply(o, g, t),
            donate_argnums=(0, 2),
        )

        def step():
            train, opt = update(state["opt"], grads, state["train"])
            jax.block_until_ready(train)
            state["opt"], state["train"] = opt, train
    else:

        def step():
            optimizer.apply(grads, variables)

    step()
    step()
    return step


def main_other_backend(args, sizes, pairs):
    backend = keras.backend.backend()
    mode = "jax.jit(stateless_apply)" if backend == "jax" else "eager apply"
    print(f"{backend}, Keras {keras.__version__}, {os.cpu_count()} CPU "
          f"cores; {mode}; {args.repeats} interleaved rounds of >= 50 ms "
          "blocks, ms per step; goal: kit/keras <= 1.00")
    print(f"{'optimizer':<14}{'N':>4}{'vars':>5} |{'kit':>8}{'keras':>8}"
          f"{'paired':>7}{'A/A':>6}")
    rows = []
    for total in sizes:
        for name, kit, builtin, _ in pairs:
            for pieces in (1, 100):
                fns = {who: _other_backend_step(make, total, pieces)
                       for who, make in (("kit", kit), ("keras", builtin),
                                         ("keras2", builtin))}
                calls = _timing.calls_per_block(fns["keras"])
                times = _timing.interleaved(fns, args.repeats, calls)
                paired = _timing.paired(times, "kit", "keras")
                control = _timing.paired(times, "keras2", "keras")
                t = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                rows.append(dict(optimizer=name, n=total, variables=pieces,
                                 kit=t["kit"], keras=t["keras"],
                                 paired=paired, control=control,
                                 verdict=_timing.verdict(paired, control),
                                 backend=backend))
                print(f"{name:<14}{total / 1e6:>3.0f}M{pieces:>5} |"
                      f"{t['kit']:>8.2f}{t['keras']:>8.2f}"
                      f"{paired:>7.2f}{control:>6.2f}  {rows[-1]['verdict']}",
                      flush=True)
                del fns
                keras.backend.clear_session()
                gc.collect()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1M only")
    parser.add_argument("--large", action="store_true", help="N = 32M only")
    parser.add_argument("--repeats", type=int, default=11,
                        help="interleaved rounds")
    parser.add_argument("--only", default=None, help="comma-separated names")
    parser.add_argument("--backend", default=None,
                        help="tensorflow (default), jax, torch or all")
    args = parser.parse_args(argv)
    sizes = [1_000_000, 32_000_000]
    if args.quick or args.large:
        sizes = [32_000_000] if args.large else [1_000_000]
    pairs = [p for p in PAIRS if not args.only or p[0] in args.only.split(",")]
    if args.backend == "all":
        rest = [a for a in (argv if argv is not None else sys.argv[1:])]
        i = rest.index("--backend")
        del rest[i:i + 2]
        for backend in ("tensorflow", "jax", "torch"):
            subprocess.run([sys.executable, __file__, "--backend", backend,
                            *rest], check=False)
        return []
    if keras.backend.backend() != "tensorflow":
        return main_other_backend(args, sizes, pairs)
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPU cores; {args.repeats} interleaved rounds of "
          ">= 50 ms blocks, ms per step (medians)")
    print("goal: no row slower than the Keras built-in: paired kit/keras "
          "<= 1.00 without and with XLA")
    header = (f"{'optimizer':<14}{'N':>4}{'vars':>5} |{'kit':>7}{'keras':>7}"
              f"{'paired':>7}{'A/A':>6} |{'kit':>6}{'keras':>7}{'paired':>7}"
              f"{'A/A':>6}{'floor':>6}{'k/fl':>6}  no XLA / XLA")
    rows = []
    for total in sizes:
        bandwidth = copy_bandwidth(total)
        print(f"\nN={total / 1e6:.0f}M, streaming bandwidth (dst += src) "
              f"{bandwidth / 1e9:.1f} GB/s   (left: no XLA | right: XLA)")
        print(header)
        for name, kit, builtin, arrays in pairs:
            floor = arrays * 4.0 * total / bandwidth
            for pieces in (1, 100):
                times, paired, control = {}, {}, {}
                for jit in (False, True):
                    # One mode at a time: XLA-jitted steps already built in
                    # the process slow the kit's compiled no-XLA call
                    # (Adagrad, 100 variables: 0.85 -> 0.97 of Keras).
                    group = {
                        (who, jit): _step_fn(make, total, pieces, jit)
                        for who, make in (("kit", kit), ("keras", builtin),
                                          ("keras2", builtin))
                    }
                    calls = _timing.calls_per_block(group["keras", jit])
                    times.update(_timing.interleaved(group, args.repeats,
                                                     calls))
                    paired[jit] = _timing.paired(
                        times, ("kit", jit), ("keras", jit))
                    control[jit] = _timing.paired(
                        times, ("keras2", jit), ("keras", jit))
                    del group
                    keras.backend.clear_session()
                    gc.collect()
                t = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                verdicts = [_timing.verdict(paired[j], control[j])
                            for j in (False, True)]
                row = dict(
                    optimizer=name, n=total, variables=pieces,
                    kit=t["kit", False], keras=t["keras", False],
                    paired=paired[False], control=control[False],
                    kit_xla=t["kit", True], keras_xla=t["keras", True],
                    paired_xla=paired[True], control_xla=control[True],
                    floor=floor * 1e3, verdicts=verdicts,
                )
                rows.append(row)
                print(f"{name:<14}{total / 1e6:>3.0f}M{pieces:>5} |"
                      f"{row['kit']:>7.2f}{row['keras']:>7.2f}"
                      f"{row['paired']:>7.2f}{row['control']:>6.2f} |"
                      f"{row['kit_xla']:>6.2f}{row['keras_xla']:>7.2f}"
                      f"{row['paired_xla']:>7.2f}{row['control_xla']:>6.2f}"
                      f"{row['floor']:>6.2f}"
                      f"{row['kit_xla'] / row['floor']:>6.2f}"
                      f"  {' / '.join(verdicts)}", flush=True)
                gc.collect()  # 32M-value configs hold GBs
    return rows


if __name__ == "__main__":
    main()
