"""Search efficiency: grid vs random vs Bayesian vs Hyperband vs TPE.

The course's claims about hyperparameter search, measured on fixed tasks:
an MLP (inputs -> width -> classes, ReLU, dropout, L2, SGD with momentum
0.9) on scikit-learn's bundled data (`--tasks digits breast_cancer wine`:
10-class digits, a small tabular binary task, a tiny 3-class one), tuning
learning rate (log 1e-4..1), dropout (0..0.6), width (16..256, log) and L2
(log 1e-6..1e-1), scored by validation loss (`--objective val_accuracy`
for accuracy). The start-up rule of TPE and Bayesian optimization
(`ktk.tuning._oracles.startup_trials`: a quarter of the budget, 2 to 10)
was set before any of these runs; no task tunes it.

1. Strategies at the same trial budget over several seeds, each driving
   keras-tuner's own oracle (the kit's `TPEOracle` for TPE) through
   `create_trial` / `update_trial` / `end_trial`. It prints the median best
   score after k trials and the number of trials each strategy needs to
   reach random search's final median best. Expected: (i) random beats
   grid at equal budget when few hyperparameters matter (Bergstra & Bengio
   2012: a grid of B points over d dimensions tries only B^(1/d) values of
   the one that matters), (ii) Bayesian optimization (and TPE) reach
   random's best in fewer trials. To afford hundreds of trials, a trial's
   training is one compiled TensorFlow loop (the MLP at the maximal width,
   hidden units beyond `width` masked out), traced once for all trials;
   results are cached by configuration.
2. Per-trial overhead of `ktk.tuning.search` against a plain
   `keras_tuner.RandomSearch` running the same trials (same oracle seed,
   same Keras model, same fit): ratio of wall time, goal <= 1.05.
3. Trial throughput of `ktk.tuning.run_workers` with 2 workers vs 1 on the
   same search script (real processes, keras-tuner's gRPC chief): goal
   >= 1.8x on 2 free cores, for trials of >= 1 s. Trial-phase throughput (first trial start to
   last trial end) and end-to-end wall time are both printed.

Usage:

    python benchmarks/search_efficiency.py --quick      # a few minutes
    python benchmarks/search_efficiency.py              # 81 = 3^4 trials,
        # 20 seeds: about an hour, the Bayesian oracle's GP dominates
    python benchmarks/search_efficiency.py --only strategies --seeds 30
    python benchmarks/search_efficiency.py --objective val_accuracy

--quick: 10 seeds x 16 trials (16 = 2^4, the full grid over 4 knobs: equal
budget for grid search), 6 trials x 2 repeats for the overhead, 12 trials for
the throughput. Throughput needs 2 idle cores: on a busy machine the second
worker has no core to run on.

Reference:
    - [Bergstra & Bengio, 2012](https://jmlr.org/papers/v13/bergstra12a.html)
    - [Snoek et al., 2012](https://arxiv.org/abs/1206.2944)
    - [Li et al., 2018 (Hyperband)](https://arxiv.org/abs/1603.06560)
    - [Bergstra et al., 2011 (TPE)](https://papers.nips.cc/paper/4443-algorithms-for-hyper-parameter-optimization)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import textwrap
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_training_kit as ktk  # noqa: E402
from keras_training_kit import _compat  # noqa: E402
from keras_training_kit.tuning._oracles import startup_trials  # noqa: E402

STRATEGIES = ("grid", "random", "bayesian", "hyperband", "tpe")
HIDDEN = 256  # the largest width; narrower nets mask units out
BATCH = 64
FULL_EPOCHS = 5
RANGES = {  # name: (low, high, sampling)
    "learning_rate": (1e-4, 1.0, "log"),
    "dropout": (0.0, 0.6, "linear"),
    "width": (16, 256, "log"),
    "l2": (1e-6, 1e-1, "log"),
}
OBJECTIVE = kt.Objective("val_loss", "min")  # --objective val_accuracy
DIVERGED_LOSS = 10.0


def digits(task: str = "digits"):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    x, y = getattr(datasets, f"load_{task}")(return_X_y=True)
    x = x.astype("float32")
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    xt, xv, yt, yv = train_test_split(
        x, y.astype("int32"), test_size=0.2, random_state=0, stratify=y
    )
    return (xt, yt), (xv, yv)


# --- 1. strategies ---------------------------------------------------------


class FastMLP:
    """The task's training, compiled once: one trial = one call.

    `v ← 0.9 v − η (∇CE + ∇ l2·Σw²); w ← w + v` on mini-batches of
    64 drawn with a per-step seed; inverted dropout after the hidden layer.
    Weights start from one fixed draw (Glorot normal for the used width),
    so a configuration always gets the same score.
    """

    def __init__(self, data):
        (x, y), (xv, yv) = data
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.xv, self.yv = tf.constant(xv), tf.constant(yv)
        rng = np.random.default_rng(0)
        self.n_in, self.n_out = x.shape[1], int(y.max()) + 1
        self.z1 = tf.constant(
            rng.standard_normal((self.n_in, HIDDEN)), tf.float32
        )
        self.z2 = tf.constant(
            rng.standard_normal((HIDDEN, self.n_out)), tf.float32
        )
        self.steps_per_epoch = x.shape[0] // BATCH
        self.cache = {}
        self.calls = 0

    @tf.function(reduce_retracing=True)
    def _train(self, lr, rate, l2, width, steps):
        n = tf.shape(self.x)[0]
        units = tf.cast(tf.range(HIDDEN) < tf.cast(width, tf.int32), tf.float32)
        w_f = tf.cast(width, tf.float32)
        n_in, n_out = float(self.n_in), float(self.n_out)
        w1 = self.z1 * tf.sqrt(2.0 / (n_in + w_f)) * units
        w2 = self.z2 * tf.sqrt(2.0 / (w_f + n_out)) * units[:, None]
        b1, b2 = tf.zeros([HIDDEN]), tf.zeros([self.n_out])
        params = [w1, b1, w2, b2]
        velocity = [tf.zeros_like(p) for p in params]
        for step in tf.range(steps):
            seed = tf.stack([step, 7])
            idx = tf.random.stateless_uniform(
                [BATCH], seed, maxval=n, dtype=tf.int32
            )
            xb, yb = tf.gather(self.x, idx), tf.gather(self.y, idx)
            keep = tf.cast(
                tf.random.stateless_uniform([BATCH, HIDDEN], seed + 1) >= rate,
                tf.float32,
            )
            with tf.GradientTape() as tape:
                tape.watch(params)
                w1, b1, w2, b2 = params
                h = tf.nn.relu(xb @ w1 + b1) * units * keep / (1.0 - rate)
                logits = h @ w2 + b2
                ce = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits)
                )
                loss = ce + l2 * (
                    tf.reduce_sum(tf.square(w1)) + tf.reduce_sum(tf.square(w2))
                )
            grads = tape.gradient(loss, params)
            velocity = [0.9 * v - lr * g for v, g in zip(velocity, grads)]
            params = [p + v for p, v in zip(params, velocity)]
        w1, b1, w2, b2 = params
        logits = (tf.nn.relu(self.xv @ w1 + b1) * units) @ w2 + b2
        hit = tf.cast(tf.argmax(logits, axis=1, output_type=tf.int32), tf.int32)
        ok = tf.reduce_all(tf.math.is_finite(logits), axis=1)
        accuracy = tf.reduce_mean(
            tf.cast(tf.logical_and(ok, tf.equal(hit, self.yv)), tf.float32)
        )
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(self.yv, logits)
        )
        return accuracy, loss

    def score(self, values: dict, epochs: int = FULL_EPOCHS) -> float:
        key = json.dumps(
            {k: round(float(values[k]), 10) for k in RANGES} | {"e": epochs},
            sort_keys=True,
        )
        if key not in self.cache:
            self.calls += 1
            accuracy, loss = self._train(
                tf.constant(values["learning_rate"], tf.float32),
                tf.constant(values["dropout"], tf.float32),
                tf.constant(values["l2"], tf.float32),
                tf.constant(values["width"], tf.float32),
                tf.constant(epochs * self.steps_per_epoch, tf.int32),
            )
            loss = float(loss)
            # A diverged run scores as a bad finite loss, as with prune=True.
            loss = loss if math.isfinite(loss) else DIVERGED_LOSS
            self.cache[key] = {
                "val_accuracy": float(accuracy), "val_loss": loss
            }
        return self.cache[key][OBJECTIVE.name]


def continuous_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    for name, (lo, hi, sampling) in RANGES.items():
        if name == "width":
            hp.Int(name, lo, hi, sampling=sampling)
        else:
            hp.Float(name, lo, hi, sampling=sampling)
    return hp


def grid_space(budget: int, shift=None) -> kt.HyperParameters:
    """A full factorial grid of at most `budget` points: k values per axis.

    The k values sit in k equal slices of each range, in the range's own
    scale (log or linear): at the slice centres by default, or at
    `shift[d]` (in [0, 1)) of each slice. Where a grid lands is arbitrary,
    so each seed shifts it at random and the table reports the median,
    rather than one lucky or unlucky placement.
    """
    k = max(1, int(math.floor(budget ** (1 / len(RANGES)) + 1e-9)))
    shift = [0.5] * len(RANGES) if shift is None else shift
    hp = kt.HyperParameters()
    for d, (name, (lo, hi, sampling)) in enumerate(RANGES.items()):
        qs = [(i + shift[d]) / k for i in range(k)]
        if sampling == "log":
            vals = [lo * (hi / lo) ** q for q in qs]
        else:
            vals = [lo + (hi - lo) * q for q in qs]
        if name == "width":
            vals = [int(round(x)) for x in vals]
        hp.Choice(name, vals)
    return hp


def make_oracle(strategy: str, budget: int, seed: int):
    common = {"objective": OBJECTIVE, "seed": seed}
    if strategy == "grid":
        # The first seed gets the centred grid, the others shifted ones.
        rng = np.random.default_rng(seed)
        shift = None if seed == 1 else rng.uniform(size=len(RANGES))
        return kt.oracles.GridSearchOracle(
            max_trials=budget, hyperparameters=grid_space(budget, shift),
            **common,
        )
    space = continuous_space()
    if strategy == "random":
        return kt.oracles.RandomSearchOracle(
            max_trials=budget, hyperparameters=space, **common
        )
    if strategy == "bayesian":
        # The kit's rule (`search(strategy="bayesian")`), not
        # keras-tuner's 3 x dimensions = 12 of 16.
        return kt.oracles.BayesianOptimizationOracle(
            max_trials=budget, hyperparameters=space,
            num_initial_points=startup_trials(budget), **common,
        )
    if strategy == "hyperband":
        return kt.oracles.HyperbandOracle(
            max_epochs=FULL_EPOCHS, factor=3, hyperband_iterations=1000,
            hyperparameters=space, **common,
        )
    # The kit's defaults: start-up scaled to the budget, Optuna 5's
    # multivariate TPE with the constant liar.
    return ktk.tuning.TPEOracle(
        max_trials=budget, hyperparameters=space, **common
    )


def run_strategy(strategy, budget, seed, task, directory):
    """Scores of the first `budget` trials (and epochs they trained)."""
    oracle = make_oracle(strategy, budget, seed)
    _compat.kt_set_project_dir(oracle, directory, f"{strategy}_{seed}")
    oracle.verbose = 0
    scores, epochs = [], 0
    while len(scores) < budget:
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break  # grid exhausted
        values = trial.hyperparameters.values
        e = int(values.get("tuner/epochs", FULL_EPOCHS))
        score = task.score(values, e)
        epochs += e
        oracle.update_trial(trial.trial_id, {OBJECTIVE.name: score})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        scores.append(score)
    return scores, epochs


def best_so_far(scores):
    if OBJECTIVE.direction == "min":
        return list(np.minimum.accumulate(scores))
    return list(np.maximum.accumulate(scores))


def better(a: float, b: float) -> bool:
    """`a` is at least as good as `b` for the objective."""
    return a <= b if OBJECTIVE.direction == "min" else a >= b


def compare_strategies(
    budget: int, seeds: int, out=print, task_name: str = "digits"
) -> dict:
    from threadpoolctl import threadpool_limits

    task = FastMLP(digits(task_name))
    curves, epochs = {}, {}
    t0 = time.perf_counter()
    # One BLAS thread: the Bayesian oracle's many tiny GP predictions are
    # several times slower with a thread pool on a busy machine.
    with (
        tempfile.TemporaryDirectory() as d,
        threadpool_limits(1),
        warnings.catch_warnings(),
    ):
        # The GP's length-scale bounds warnings say nothing about search.
        warnings.simplefilter("ignore")
        for strategy in STRATEGIES:
            curves[strategy], epochs[strategy] = [], []
            for seed in range(seeds):
                s, e = run_strategy(
                    strategy, budget, 1 + 1009 * seed, task, d
                )
                curves[strategy].append(best_so_far(s))
                epochs[strategy].append(e)
    elapsed = time.perf_counter() - t0
    target = statistics.median(c[-1] for c in curves["random"])
    name = OBJECTIVE.name
    marks = sorted({1, 5, 10, 15, 20, budget} & set(range(1, budget + 1)))
    out(
        f"\n1. Best {name} vs trials, MLP on {task_name}, median of "
        f"{seeds} seeds, budget {budget} trials\n   (grid: full factorial "
        f"{grid_size(budget)} points, centred for seed 0 and shifted at "
        f"random for the others;\n   target = random's final median best "
        f"= {target:.4f})\n"
    )
    head = "".join(f"{'@' + str(m):>8}" for m in marks)
    out(
        f"{'strategy':<10}{head}{'  trials to target':>19}"
        f"{'  seeds reaching':>16}{'  epochs':>9}"
    )
    summary = {"target": target}
    for strategy in STRATEGIES:
        cs = curves[strategy]
        cols = ""
        for m in marks:
            vals = [c[min(m, len(c)) - 1] for c in cs]
            cols += f"{statistics.median(vals):>8.4f}"
        reach = [
            next((i + 1 for i, b in enumerate(c) if better(b, target)), None)
            for c in cs
        ]
        hit = [r for r in reach if r is not None]
        # Unreached counts as "more than the budget" for the median.
        med = statistics.median([r or budget + 1 for r in reach])
        med_s = f"{med:g}" if med <= budget else f">{budget}"
        out(
            f"{strategy:<10}{cols}{med_s:>19}"
            f"{f'{len(hit)}/{len(cs)}':>16}"
            f"{statistics.median(epochs[strategy]):>9g}"
        )
        summary[strategy] = {
            "final_median": statistics.median(c[-1] for c in cs),
            "trials_to_target": med,
            "reached": len(hit),
        }
    out(
        f"({task.calls} distinct trainings, {elapsed:.0f} s; hyperband "
        "trials train 2 or 5 epochs, the others 5)"
    )
    g, r = summary["grid"]["final_median"], summary["random"]["final_median"]
    verdict = (
        "tie" if r == g else "random wins" if better(r, g) else "grid wins"
    )
    out(
        f"(i)  random vs grid at equal budget: {r:.4f} vs {g:.4f} -> "
        f"{verdict}"
        f" (centred grid alone: {curves['grid'][0][-1]:.4f})"
    )
    def fmt(strategy):
        med = summary[strategy]["trials_to_target"]
        return f"{med:g}" if med <= budget else f">{budget}"

    out(
        f"(ii) median trials to reach random's best: bayesian "
        f"{fmt('bayesian')}, tpe {fmt('tpe')}, random {fmt('random')} "
        f"(of {budget}; goal for bayesian and tpe: <= {budget // 2})"
    )
    return summary


def grid_size(budget: int) -> int:
    return len(list(grid_space(budget).space[0].values)) ** len(RANGES)


# --- 2. overhead of ktk.tuning.search ---------------------------------------


def build_mlp(hp):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(
                hp.Int("width", 16, 256, sampling="log"),
                activation="relu",
                kernel_regularizer=keras.regularizers.L2(
                    hp.Float("l2", 1e-6, 1e-1, sampling="log")
                ),
            ),
            keras.layers.Dropout(hp.Float("dropout", 0.0, 0.6)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.SGD(
            hp.Float("learning_rate", 1e-4, 1.0, sampling="log"),
            momentum=0.9,
        ),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def overhead(trials: int, repeats: int, epochs: int, out=print) -> float:
    (x, y), val = digits()
    times = {"keras-tuner": [], "ktk": []}
    values = {}
    with tempfile.TemporaryDirectory() as d:
        for rep in range(repeats):
            # Alternate the order so machine load hits both alike.
            order = ("keras-tuner", "ktk") if rep % 2 == 0 else (
                "ktk", "keras-tuner"
            )
            for which in order:
                keras.backend.clear_session()
                keras.utils.set_random_seed(0)
                t0 = time.perf_counter()
                if which == "keras-tuner":
                    tuner = kt.RandomSearch(
                        build_mlp, objective="val_accuracy",
                        max_trials=trials, seed=3, overwrite=True,
                        directory=d, project_name=f"kt{rep}",
                    )
                    tuner.search(
                        x, y, validation_data=val, epochs=epochs,
                        batch_size=BATCH, verbose=0,
                    )
                    got = [t.hyperparameters.values for t in
                           tuner.oracle.trials.values()]
                else:
                    result = ktk.tuning.search(
                        build_mlp, x, y, strategy="random",
                        objective="val_accuracy", max_trials=trials,
                        validation_data=val, epochs=epochs, seed=3,
                        directory=os.path.join(d, f"ktk{rep}"),
                        overwrite=True, verbose=0, batch_size=BATCH,
                    )
                    got = [t["hyperparameters"] for t in result.trials]
                times[which].append(time.perf_counter() - t0)
                values[which] = sorted(json.dumps(v, sort_keys=True)
                                       for v in got)
    same = values["keras-tuner"] == values["ktk"]
    kt_t = statistics.median(times["keras-tuner"]) / trials
    ktk_t = statistics.median(times["ktk"]) / trials
    ratio = ktk_t / kt_t
    out(
        f"\n2. Per-trial wall time, {trials} random-search trials x "
        f"{repeats} repeats, {epochs} epochs each (same trials: {same})"
    )
    out(f"   keras_tuner.RandomSearch : {kt_t:.3f} s/trial")
    out(f"   ktk.tuning.search        : {ktk_t:.3f} s/trial")
    out(f"   ratio ktk / keras-tuner  : {ratio:.3f}  (goal <= 1.05)")
    return ratio


# --- 3. throughput of run_workers -------------------------------------------

WORKER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras_tuner as kt
    sys.path.insert(0, {bench_dir!r})
    import search_efficiency as bench

    log, directory, trials, epochs = sys.argv[1:5]

    class Timed(kt.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            t0 = time.time()
            out = super().run_trial(trial, *args, **kwargs)
            with open(log, "a") as f:
                f.write(json.dumps([t0, time.time()]) + "\\n")
            return out

    (x, y), val = bench.digits()
    tuner = Timed(bench.build_mlp, objective="val_accuracy",
                  max_trials=int(trials), seed=5, directory=directory,
                  project_name="w")
    tuner.search(x, y, validation_data=val, epochs=int(epochs),
                 batch_size=bench.BATCH, verbose=0)
    """
)


def throughput(trials: int, epochs: int, out=print) -> float:
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    cores = len(os.sched_getaffinity(0))
    rates, walls = {}, {}
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "worker.py")
        with open(script, "w") as f:
            f.write(WORKER_SCRIPT.format(bench_dir=bench_dir))
        for workers in (1, 2):
            log = os.path.join(d, f"log{workers}.jsonl")
            sink = open(os.devnull, "w")
            t0 = time.perf_counter()
            code = ktk.tuning.run_workers(
                script, workers=workers, output=sink,
                script_args=(log, os.path.join(d, f"r{workers}"), trials,
                             epochs),
            )
            walls[workers] = time.perf_counter() - t0
            sink.close()
            if code != 0:
                raise RuntimeError(f"run_workers exited with {code}")
            with open(log) as f:
                spans = [json.loads(line) for line in f]
            span = max(e for _, e in spans) - min(s for s, _ in spans)
            rates[workers] = len(spans) / span
    ratio = rates[2] / rates[1]
    out(
        f"\n3. Trial throughput of run_workers, {trials} trials of "
        f"{epochs} epochs, {cores} cores visible"
    )
    for w in (1, 2):
        out(
            f"   {w} worker(s): {rates[w]:.3f} trials/s in the trial phase,"
            f" {walls[w]:.1f} s end to end (process start included)"
        )
    out(
        f"   ratio 2 workers / 1     : {ratio:.3f}  (goal >= 1.8); end to "
        f"end {walls[1] / walls[2]:.3f}"
    )
    return ratio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small run (the defaults below, a few minutes)")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None,
                        help="trial budget per strategy and seed")
    parser.add_argument("--overhead-trials", type=int, default=None)
    parser.add_argument("--worker-trials", type=int, default=None)
    parser.add_argument(
        "--only", choices=("strategies", "overhead", "workers"),
        default=None,
    )
    parser.add_argument(
        "--tasks", nargs="+", default=["digits", "breast_cancer"],
        choices=("digits", "breast_cancer", "wine", "iris"),
        help="bundled scikit-learn data sets of part 1 (default: digits "
        "breast_cancer)",
    )
    parser.add_argument(
        "--objective", choices=("val_loss", "val_accuracy"),
        default="val_loss", help="score of part 1 (default: val_loss)",
    )
    args = parser.parse_args(argv)
    global OBJECTIVE
    OBJECTIVE = kt.Objective(
        args.objective, "min" if args.objective == "val_loss" else "max"
    )
    quick = args.quick
    seeds = args.seeds or (10 if quick else 20)
    # 16 = 2^4: grid search's full factorial over 4 knobs, equal budget.
    budget = args.trials or (16 if quick else 81)
    o_trials = args.overhead_trials or (6 if quick else 12)
    w_trials = args.worker_trials or (12 if quick else 24)
    print(
        f"keras {keras.__version__}, keras-tuner {kt.__version__}, "
        f"TensorFlow {tf.__version__}, {len(os.sched_getaffinity(0))} cores"
    )
    if args.only in (None, "strategies"):
        for task_name in args.tasks:
            compare_strategies(budget, seeds, task_name=task_name)
    if args.only in (None, "overhead"):
        overhead(o_trials, repeats=2 if quick else 4, epochs=3)
    if args.only in (None, "workers"):
        throughput(w_trials, epochs=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
