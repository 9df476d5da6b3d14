"""Epoch time of a real `fit`: kit optimizer vs the Keras built-in, same math.

For each backend (one subprocess per backend, since Keras fixes it at
import), each model and each compilation mode the backend has, the kit's
optimizer and its Keras twin train the same model from the same initial
weights, one epoch at a time, in a rotating order. The table gives the
median epoch time of each and the median of the per-round (paired) ratios
kit/Keras, the steadier number on a loaded machine. Goal: <= 1.00. A second
copy of the Keras model (same weights, same optimizer) runs in the same
rounds as an A/A control: its ratio to the first copy is what identical
code measures here, and a kit ratio above 1.00 by less than that distance
reads "noise", beyond it "SLOWER" (`_timing.py`).

Pairs (same update, up to rounding): `Momentum` vs `SGD(momentum=0.9)`,
`RMSProp(init_with_first_gradient=False)` vs `RMSprop`, `Adam(epsilon=1e-12)`
vs `Adam(epsilon=1e-12)` (the two place epsilon differently, which at 1e-12
is below rounding; at exactly 0 the kit guards dead weights' 0/0, one op
more than Keras),
`Adagrad` vs `Adagrad`.

Models: "wide" (512 -> 2048 -> 2048 -> 10: two multi-million-parameter
kernels) and "deep" (40 Dense(32) layers: 82 small variables).
Modes: TensorFlow eager-graph and XLA, JAX jit (its only fast mode),
PyTorch eager (its default; `torch.compile` is not timed).

    python benchmarks/fit_speed.py                  # all backends
    python benchmarks/fit_speed.py --quick          # smaller, fewer rounds
    python benchmarks/fit_speed.py --backend torch  # one backend
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
MODES = {"tensorflow": (False, True), "jax": (True,), "torch": (False,)}
PAIRS = ("Momentum", "RMSProp", "Adam", "Adagrad")


def _pair(name):
    import keras

    import keras_training_kit as ktk

    return {
        "Momentum": (lambda: ktk.optimizers.Momentum(0.01, 0.9),
                     lambda: keras.optimizers.SGD(0.01, momentum=0.9)),
        "RMSProp": (lambda: ktk.optimizers.RMSProp(
                        1e-3, init_with_first_gradient=False),
                    lambda: keras.optimizers.RMSprop(1e-3)),
        "Adam": (lambda: ktk.optimizers.Adam(1e-3, epsilon=1e-12),
                 lambda: keras.optimizers.Adam(1e-3, epsilon=1e-12)),
        "Adagrad": (lambda: ktk.optimizers.Adagrad(0.01),
                    lambda: keras.optimizers.Adagrad(0.01)),
    }[name]


def _model(kind, features):
    import keras

    layers = [keras.Input((features,))]
    if kind == "wide":
        layers += [keras.layers.Dense(2048, activation="relu"),
                   keras.layers.Dense(2048, activation="relu")]
    else:
        layers += [keras.layers.Dense(32, activation="relu")
                   for _ in range(40)]
    layers.append(keras.layers.Dense(10))
    return keras.Sequential(layers)


def run_backend(args):
    """Runs in the backend's own process; prints one JSON line per row."""
    import keras
    import numpy as np

    samples = 1024 if args.quick else 4096
    rounds = args.rounds or (5 if args.quick else 9)
    rng = np.random.default_rng(0)
    data = {}
    for kind, features in (("wide", 512), ("deep", 64)):
        x = rng.normal(size=(samples, features)).astype("float32")
        y = rng.integers(0, 10, size=samples).astype("int32")
        data[kind] = (x, y, features)
    names = [n for n in PAIRS if not args.only or n in args.only.split(",")]
    for kind in args.models.split(","):
        x, y, features = data[kind]
        for jit in MODES[keras.backend.backend()]:
            for name in names:
                make_kit, make_keras = _pair(name)
                keras.utils.set_random_seed(0)
                reference = _model(kind, features)
                models = {}
                for who, make in (("kit", make_kit), ("keras", make_keras),
                                  ("keras2", make_keras)):
                    model = _model(kind, features)
                    model.set_weights(reference.get_weights())
                    model.compile(
                        optimizer=make(), jit_compile=jit,
                        loss=keras.losses.SparseCategoricalCrossentropy(
                            from_logits=True),
                    )
                    model.fit(x, y, batch_size=args.batch, epochs=1,
                              verbose=0)  # trace, compile, build slots
                    models[who] = model

                def epoch(model):
                    return lambda: model.fit(
                        x, y, batch_size=args.batch, epochs=1, verbose=0,
                        shuffle=False)

                times = _timing.interleaved(
                    {who: epoch(m) for who, m in models.items()}, rounds)
                ratio = _timing.paired(times, "kit", "keras")
                control = _timing.paired(times, "keras2", "keras")
                row = {
                    "backend": keras.backend.backend(), "model": kind,
                    "jit": jit, "optimizer": name,
                    "kit_ms": statistics.median(times["kit"]) * 1e3,
                    "keras_ms": statistics.median(times["keras"]) * 1e3,
                    "ratio": ratio, "control": control,
                    "verdict": _timing.verdict(ratio, control),
                    "rounds": rounds, "samples": samples,
                }
                print(json.dumps(row), flush=True)
                del models, reference
                keras.backend.clear_session()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1024 samples, 5 rounds")
    parser.add_argument("--backend", default=",".join(BACKENDS))
    parser.add_argument("--models", default="wide,deep")
    parser.add_argument("--only", default=None, help="optimizer names")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_backend(args)
        return []

    print("kit vs Keras built-in, epoch time of fit (ms), medians over "
          "interleaved rounds; ratio = median of paired kit/keras ratios; "
          f"{os.cpu_count()} CPU cores (load from other processes shows in "
          "the absolute times, less in the paired ratios)")
    print(f"{'backend':<11}{'model':<6}{'jit':<5}{'optimizer':<10}"
          f"{'kit':>9}{'keras':>9}{'ratio':>7}{'A/A':>6}  goal <= 1.00")
    rows = []
    for backend in args.backend.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend,
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--child", "--models",
                   args.models, "--batch", str(args.batch)]
        command += ["--quick"] * args.quick
        command += ["--only", args.only] if args.only else []
        command += ["--rounds", str(args.rounds)] if args.rounds else []
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                text=True)
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            rows.append(row)
            print(f"{row['backend']:<11}{row['model']:<6}"
                  f"{'on' if row['jit'] else 'off':<5}{row['optimizer']:<10}"
                  f"{row['kit_ms']:>9.1f}{row['keras_ms']:>9.1f}"
                  f"{row['ratio']:>7.2f}{row['control']:>6.2f}"
                  f"  {row['verdict']}", flush=True)
        if proc.wait() != 0:
            print(f"{backend}: the benchmark process failed", flush=True)
    return rows


if __name__ == "__main__":
    main()
