"""Grid vs random vs Bayesian search at the same budget.

The course (topic 15): grid search is embarrassingly parallel but cursed
by dimensionality; random search is better when only a few of the
hyperparameters matter (Bergstra & Bengio 2012): with n trials over two
knobs a grid tries only sqrt(n) values of each, random search n values of
each; Bayesian optimization fits a surrogate model of the objective to
pick the next point. `ktk.tuning.search` runs keras-tuner's own oracles on
an MLP on digits over the learning rate (log scale, the knob that matters)
and the dropout rate, n trials each; the grid is the lattice of cell
centres. The score comparison needs many seeds (see
`benchmarks/search_efficiency.py`); one run shows what each strategy
tries.

    python examples/search_strategies.py [--quick] [--out DIR]
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

LR = (1e-4, 1e-1)
DROPOUT = (0.0, 0.6)


def centres(low, high, k, log=False):
    """k cell centres of [low, high] (on a log scale if `log`)."""
    u = (np.arange(k) + 0.5) / k
    if log:
        return [float(v) for v in low * (high / low) ** u]
    return [round(float(v), 4) for v in low + (high - low) * u]


def builder(grid_k=None):
    def build_model(hp):
        if grid_k:
            lr = hp.Choice("learning_rate", centres(*LR, grid_k, log=True))
            rate = hp.Choice("dropout", centres(*DROPOUT, grid_k))
        else:
            lr = hp.Float("learning_rate", *LR, sampling="log")
            rate = hp.Float("dropout", *DROPOUT)
        model = keras.Sequential([
            keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
            ktk.layers.Dropout(rate),
            keras.layers.Dense(10, activation="softmax")])
        model.compile(ktk.optimizers.Adam(lr),
                      "sparse_categorical_crossentropy")
        return model

    return build_model


def main():
    args = _common.arguments(__doc__)
    k = 2 if args.quick else 4
    trials = k * k
    epochs = 2 if args.quick else 10
    (x, y), (xv, yv) = _common.digits(
        train_size=300 if args.quick else None, seed=args.seed)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for strategy in ("grid", "random", "bayesian"):
            print(f"  {strategy} search, {trials} trials", flush=True)
            results[strategy] = ktk.tuning.search(
                builder(k if strategy == "grid" else None), x, y,
                strategy=strategy, max_trials=trials, epochs=epochs,
                validation_data=(xv, yv), directory=folder, overwrite=True,
                seed=args.seed, verbose=0, batch_size=32,
            )
            keras.backend.clear_session()
    fig, axes = _common.new_figure(1, 3, size=(11, 3.6), )
    distinct, best, scores = {}, {}, {}
    for ax, (name, result) in zip(axes[0], results.items()):
        done = [t for t in result.trials if t["status"] == "completed"]
        lrs = [t["hyperparameters"]["learning_rate"] for t in done]
        rates = [t["hyperparameters"]["dropout"] for t in done]
        s = np.array([t["score"] for t in done], float)
        ax.scatter(lrs, rates, c=np.log(s), cmap="viridis_r", s=40)
        ax.set_xscale("log")
        ax.set_xlim(*LR)
        ax.set_ylim(*DROPOUT)
        ax.set_xlabel("learning rate (log)")
        ax.set_title(f"{name}: best val_loss {result.best_score:.3f}",
                     fontsize=9)
        distinct[name] = len({round(v, 12) for v in lrs})
        best[name] = float(result.best_score)
        scores[name] = len(done)
    axes[0][0].set_ylabel("dropout")
    figure = _common.save(fig, args.out, "search_strategies.png")
    _common.claim(
        args.out, "search_strategies",
        f"at the same budget of {trials} trials the grid tries only {k} "
        f"learning rates while random and Bayesian search try one per "
        f"trial; every trial of every strategy completed with a finite score",
        distinct["grid"] == k
        and distinct["random"] == trials and distinct["bayesian"] == trials
        and all(n == trials for n in scores.values())
        and all(np.isfinite(v) for v in best.values()),
        [figure], distinct_learning_rates=distinct, best_val_loss=best,
        completed_trials=scores, trials=trials, epochs=epochs,
    )


if __name__ == "__main__":
    main()
