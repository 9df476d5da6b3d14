"""Learning rates too low, good, too high and diverging, on one plot.

The course (topic 6): "too small: slow decay; too large: the loss
oscillates or explodes; watch the loss curve". The same MLP on standardized
digits, from the same initial weights, with `ktk.optimizers.Adam` at four
learning rates; each run is watched by `ktk.callbacks.TrainingDiagnosis`,
whose findings are printed next to the numbers.

    python examples/learning_rates.py [--quick] [--out DIR]
"""

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

RATES = {"too low": 1e-4, "good": 3e-3, "too high": 0.1, "diverging": 10.0}


def main():
    args = _common.arguments(__doc__)
    epochs = 6 if args.quick else 20
    (x, y), (xv, yv) = _common.digits(
        train_size=500 if args.quick else None, seed=args.seed)
    curves, codes = {}, {}
    for label, lr in RATES.items():
        keras.utils.set_random_seed(args.seed)
        model = keras.Sequential([
            keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax")])
        model.compile(ktk.optimizers.Adam(lr),
                      "sparse_categorical_crossentropy")
        diag = ktk.callbacks.TrainingDiagnosis(verbose=0, stop_on=())
        h = model.fit(x, y, validation_data=(xv, yv), epochs=epochs,
                      batch_size=32, verbose=0, callbacks=[diag]).history
        curves[label] = [float(v) for v in h["loss"]]
        codes[label] = [f.code for f in diag.findings]
        print(f"  {label:<10} lr={lr:<6} final loss {curves[label][-1]:.4g}"
              f"  findings: {', '.join(codes[label])}", flush=True)
        keras.backend.clear_session()
    fig, axes = _common.new_figure(size=(6.4, 4.2))
    ax = axes[0][0]
    for label, values in curves.items():
        v = np.array(values)
        v[~np.isfinite(v)] = np.nan
        ax.plot(np.arange(1, len(v) + 1), v, "-o", ms=3,
                label=f"{label} (eta={RATES[label]})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (log)")
    ax.set_title("Adam on digits: the learning rate decides")
    ax.legend(fontsize=8)
    figure = _common.save(fig, args.out, "learning_rates.png")
    final = {k: v[-1] for k, v in curves.items()}
    chance = math.log(10.0)  # the constant predictor's cross-entropy
    div = curves["diverging"]
    exploded = not all(math.isfinite(v) for v in div) or min(div) > 10 * chance
    good = final["good"]
    _common.claim(
        args.out, "learning_rates",
        "the good rate ends lowest; too low decays slowly, too high stays "
        "above it, and the largest rate explodes (NaN/Inf, or a loss that "
        "never comes within 10x of chance level ln 10)",
        exploded and all(
            math.isfinite(final[k]) and final[k] > good
            for k in ("too low", "too high")),
        [figure], final_loss=final, first_loss={k: v[0] for k, v in
                                                curves.items()},
        findings=codes, epochs=epochs,
    )


if __name__ == "__main__":
    main()
