"""L1 vs L2 regularization: what each does to the weights.

The course (topic 13). L2, `L' = L + (lambda/2) ||theta||^2`, adds
`lambda w` to the gradient: every weight decays in proportion to its size
(`w <- (1 - eta lambda) w - eta dL/dw`), so weights shrink but few become
zero. L1, `L' = L + lambda ||theta||_1`, subtracts `eta lambda sgn(w)`: a
constant pull towards zero that drives many weights to (almost) exactly
zero, a sparse net. The same over-sized net on a small slice of digits with
no penalty, `ktk.regularizers.L2` and `ktk.regularizers.L1`; histograms of
the first layer's weights.

    python examples/l1_l2.py [--quick] [--out DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402
from regularization import load_slice  # noqa: E402

NEAR_ZERO = 1e-3  # |w| below this counts as zeroed
PENALTIES = {
    "none": lambda: None,
    "L2(1e-2)": lambda: ktk.regularizers.L2(1e-2),
    "L1(1e-3)": lambda: ktk.regularizers.L1(1e-3),
}


def build_model(variant: str) -> keras.Model:
    layers = [keras.Input((64,))]
    for units, act in ((256, "relu"), (256, "relu"), (10, "softmax")):
        layers.append(keras.layers.Dense(
            units, activation=act, kernel_regularizer=PENALTIES[variant]()))
    model = keras.Sequential(layers)
    model.compile(
        ktk.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalCrossentropy(name="ce")])
    return model


def main():
    args = _common.arguments(__doc__)
    epochs = 15 if args.quick else 60
    (x, y), (xv, yv) = load_slice(200 if args.quick else 300, args.seed)
    weights, val = {}, {}
    for variant in PENALTIES:
        keras.utils.set_random_seed(args.seed)
        model = build_model(variant)
        h = model.fit(x, y, validation_data=(xv, yv), epochs=epochs,
                      batch_size=32, verbose=0).history
        weights[variant] = model.layers[0].get_weights()[0].ravel()
        val[variant] = float(h["val_ce"][-1])
        keras.backend.clear_session()
    sparse = {k: float(np.mean(np.abs(w) < NEAR_ZERO))
              for k, w in weights.items()}
    rms = {k: float(np.sqrt(np.mean(w**2))) for k, w in weights.items()}
    fig, axes = _common.new_figure(1, 3, size=(11, 3.4))
    edges = np.linspace(-0.3, 0.3, 61)
    for ax, (name, w) in zip(axes[0], weights.items()):
        ax.hist(np.clip(w, -0.3, 0.3), bins=edges, color="tab:blue")
        ax.set_yscale("log")
        ax.set_title(f"{name}: {100 * sparse[name]:.0f}% |w|<1e-3, "
                     f"RMS {rms[name]:.3f}", fontsize=9)
        ax.set_xlabel("first-layer weight")
    figure = _common.save(fig, args.out, "l1_l2.png")
    _common.claim(
        args.out, "l1_l2",
        "L1 drives many weights to (almost) zero, more than twice as many "
        "as L2 or no penalty; L2 shrinks the weights (a smaller RMS than "
        "without penalty)",
        sparse["L1(1e-3)"] > 2 * max(sparse["L2(1e-2)"], sparse["none"])
        and rms["L2(1e-2)"] < rms["none"],
        [figure], fraction_near_zero=sparse, weight_rms=rms,
        final_val_cross_entropy=val, epochs=epochs,
    )


if __name__ == "__main__":
    main()
