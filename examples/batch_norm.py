"""Batch normalization makes a deep sigmoid net trainable; population stats.

The course (topics 5 and 11): with sigmoid, gradients vanish in the early
layers of a deep net; batch normalization (Ioffe & Szegedy 2015) normalizes
each layer's inputs per mini-batch, `gamma x^ + beta`, before the
nonlinearity, so the same net trains. At test time the ideal statistics
are the whole training set's mean and variance;
`ktk.layers.recalibrate_batch_norm` sets them, in place of the moving
averages. Here: 8 sigmoid layers of 64 units on standardized digits,
`ktk.optimizers.SGD(0.1)`, with and without `ktk.layers.BatchNormalization`
before each sigmoid; then the BN net evaluated with its moving averages and
with recalibrated statistics, which are checked against a NumPy computation
of the first BN layer's population statistics.

    python examples/batch_norm.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

DEPTH = 8


def deep_sigmoid(bn: bool) -> keras.Model:
    layers = [keras.Input((64,))]
    for _ in range(DEPTH):
        layers.append(keras.layers.Dense(64, use_bias=not bn))
        if bn:
            layers.append(ktk.layers.BatchNormalization())
        layers.append(keras.layers.Activation("sigmoid"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def main():
    args = _common.arguments(__doc__)
    epochs = 5 if args.quick else 15
    (x, y), (xv, yv) = _common.digits(
        train_size=600 if args.quick else None, seed=args.seed)
    runs, models = {}, {}
    for name, bn in (("sigmoid x8", False), ("sigmoid x8 + BN", True)):
        keras.utils.set_random_seed(args.seed)
        model = deep_sigmoid(bn)
        model.compile(ktk.optimizers.SGD(0.1),
                      "sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        runs[name] = model.fit(x, y, validation_data=(xv, yv),
                               epochs=epochs, batch_size=32,
                               verbose=0).history
        models[name] = model
        print(f"  {name:<16} final loss {runs[name]['loss'][-1]:.4f}, "
              f"val accuracy {runs[name]['val_accuracy'][-1]:.3f}",
              flush=True)
    bn_model = models["sigmoid x8 + BN"]
    first = next(la for la in bn_model.layers
                 if isinstance(la, ktk.layers.BatchNormalization))
    moving = keras.ops.convert_to_numpy(first.moving_mean).copy()
    acc_moving = float(bn_model.evaluate(xv, yv, verbose=0)[1])
    ktk.layers.recalibrate_batch_norm(bn_model, x)
    acc_population = float(bn_model.evaluate(xv, yv, verbose=0)[1])
    # independent: the first BN layer's inputs are the first Dense's outputs
    z = x.astype("float64") @ bn_model.layers[0].get_weights()[0]
    mean_err = float(np.abs(
        keras.ops.convert_to_numpy(first.moving_mean) - z.mean(0)).max())
    var_err = float(np.abs(
        keras.ops.convert_to_numpy(first.moving_variance) - z.var(0)).max()
        / z.var(0).max())
    moving_gap = float(np.abs(moving - z.mean(0)).max())
    print(f"  BN net val accuracy: moving averages {acc_moving:.4f}, "
          f"population statistics {acc_population:.4f}")
    fig, axes = _common.new_figure(size=(6.4, 4))
    for name, h in runs.items():
        ep = np.arange(1, epochs + 1)
        axes[0][0].plot(ep, h["loss"], "-o", ms=3, label=f"{name} train")
        axes[0][0].plot(ep, h["val_loss"], "--s", ms=3, label=f"{name} val")
    axes[0][0].set_xlabel("epoch")
    axes[0][0].set_ylabel("loss")
    axes[0][0].set_title(f"{DEPTH} sigmoid layers, SGD(0.1)")
    axes[0][0].legend(fontsize=8)
    figure = _common.save(fig, args.out, "batch_norm.png")
    final = {n: float(h["loss"][-1]) for n, h in runs.items()}
    chance = float(np.log(10))
    _common.claim(
        args.out, "batch_norm",
        "without BN the deep sigmoid net stays near chance loss (ln 10) "
        "while with BN it trains far below it; recalibration sets the BN "
        "statistics to the training set's population mean and variance",
        final["sigmoid x8"] > 0.8 * chance
        and final["sigmoid x8 + BN"] < 0.5 * chance
        and mean_err < 1e-3 and var_err < 1e-3,
        [figure], final_loss=final, chance_loss=chance,
        val_accuracy={"moving averages": acc_moving,
                      "population statistics": acc_population},
        first_bn_mean_error=mean_err, first_bn_relative_var_error=var_err,
        moving_average_mean_gap=moving_gap, epochs=epochs,
    )


if __name__ == "__main__":
    main()
