"""Regularization on a small slice of digits: none, L2, L1, dropout, BN.

The course (topic 1): when a model does well on the training data but not
on the test data, it has large variance, it overfits; the remedies are more
data or regularization. This script trains the same over-parameterized
network (64 -> 256 -> 256 -> 10, far more weights than the few hundred
training images) five times:

    none     no regularization
    l2       ktk.regularizers.L2: L' = L + (lambda/2) * ||w||^2
    l1       ktk.regularizers.L1: L' = L + lambda * ||w||_1
    dropout  ktk.layers.Dropout(0.5) after each hidden layer
    bn       ktk.layers.BatchNormalization before each nonlinearity

and writes a PNG with the training and validation loss curves of each,
plus a table of the final numbers. Curves and table show the data loss
(cross-entropy) without the penalty, so that the variants compare; the
curves' training loss is measured during training (dropout active), the
table's `train_ce` with the trained network in inference mode.

Usage:

    python examples/regularization.py --out regularization.png --epochs 60
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

VARIANTS = ("none", "l2", "l1", "dropout", "bn")


def load_slice(
    train_size: int = 300, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A small training slice of digits and a larger validation set.

    Features are standardized with the training slice's statistics only,
    so no validation information leaks into training. Border pixels are
    (almost) constant in a small slice: their standard deviation is floored
    so that a rare nonzero validation pixel does not become huge.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    xt, xv, yt, yv = train_test_split(
        x, y.astype("int32"), train_size=train_size, random_state=seed,
        stratify=y,
    )
    mean, std = xt.mean(axis=0), np.maximum(xt.std(axis=0), 0.1)
    return ((xt - mean) / std, yt), ((xv - mean) / std, yv)


def build_model(variant: str, l2: float = 3e-3, l1: float = 3e-4,
                rate: float = 0.5, width: int = 256) -> keras.Model:
    """The same network with one kind of regularization."""
    if variant not in VARIANTS:
        raise ValueError(
            f"Argument `variant` must be one of {VARIANTS}. "
            f"Received: variant={variant!r}"
        )
    regularizer = {
        "l2": ktk.regularizers.L2(l2),
        "l1": ktk.regularizers.L1(l1),
    }.get(variant)
    layers: list = [keras.Input((64,))]
    for _ in range(2):
        layers.append(
            keras.layers.Dense(
                width,
                use_bias=variant != "bn",  # BN's beta replaces the bias
                kernel_regularizer=regularizer,
            )
        )
        if variant == "bn":
            layers.append(ktk.layers.BatchNormalization())
        layers.append(keras.layers.Activation("relu"))
        if variant == "dropout":
            layers.append(ktk.layers.Dropout(rate, seed=0))
    layers.append(
        keras.layers.Dense(10, activation="softmax",
                           kernel_regularizer=regularizer)
    )
    model = keras.Sequential(layers, name=variant)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        # The data loss alone, without the penalty, to compare variants.
        metrics=[
            "accuracy",
            keras.metrics.SparseCategoricalCrossentropy(name="ce"),
        ],
    )
    return model


def _cross_entropy(model: keras.Model, x: np.ndarray, y: np.ndarray
                   ) -> tuple[float, float]:
    """Plain data loss and accuracy (no penalty, inference mode)."""
    # One eager call: the slices are small, and it spares a predict trace.
    p = keras.ops.convert_to_numpy(model(x, training=False))
    p = p.astype(np.float64)
    ce = -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)))
    return float(ce), float(np.mean(p.argmax(axis=1) == y))


def run(epochs: int = 60, batch_size: int = 32, train_size: int = 300,
        variants: tuple[str, ...] = VARIANTS, seed: int = 0,
        build: Callable[[str], keras.Model] = build_model) -> dict:
    """Trains every variant; returns {variant: {"history", "table"}}."""
    (xt, yt), (xv, yv) = load_slice(train_size, seed)
    results = {}
    for variant in variants:
        keras.utils.set_random_seed(seed)  # same initial weights each time
        model = build(variant)
        history = model.fit(
            xt, yt, validation_data=(xv, yv), epochs=epochs,
            batch_size=batch_size, verbose=0,
        )
        train_ce, train_acc = _cross_entropy(model, xt, yt)
        val_ce, val_acc = _cross_entropy(model, xv, yv)
        val_curve = history.history["val_ce"]
        results[variant] = {
            "history": history.history,
            "table": {
                "train_ce": train_ce,
                "val_ce": val_ce,
                "gap": val_ce - train_ce,
                "best_val": float(np.min(val_curve)),
                "best_epoch": int(np.argmin(val_curve)),
                "train_acc": train_acc,
                "val_acc": val_acc,
            },
        }
    return results


def format_table(results: dict) -> str:
    """A fixed-width table of the final numbers, one row per variant."""
    header = (f"{'variant':<8} {'train_ce':>9} {'val_ce':>8} {'gap':>7} "
              f"{'best_val':>9} {'@epoch':>7} {'train_acc':>10} "
              f"{'val_acc':>8}")
    rows = [header, "-" * len(header)]
    for variant, r in results.items():
        t = r["table"]
        rows.append(
            f"{variant:<8} {t['train_ce']:>9.4f} {t['val_ce']:>8.4f} "
            f"{t['gap']:>7.4f} {t['best_val']:>9.4f} {t['best_epoch']:>7d} "
            f"{t['train_acc']:>10.3f} {t['val_acc']:>8.3f}"
        )
    return "\n".join(rows)


def plot(results: dict, path: str) -> str:
    """One panel per variant: training and validation loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), sharey=True,
                             squeeze=False)
    for ax, (variant, r) in zip(axes[0], results.items()):
        h = r["history"]
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax.plot(epochs, h["ce"], label="train")
        ax.plot(epochs, h["val_ce"], label="validation")
        ax.set_title(variant)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cross-entropy")
    axes[0][0].legend()
    fig.suptitle("Same over-parameterized net, small slice of digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="regularization.png",
                        help="path of the PNG to write")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=300)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: {args.epochs}")
    results = run(args.epochs, args.batch_size, args.train_size)
    print(format_table(results))
    print(f"wrote {plot(results, args.out)}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
