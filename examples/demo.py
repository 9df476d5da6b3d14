"""keras_training_kit demo: the course's optimizers on scikit-learn's digits.

Part 1 trains the same small MLP with each kit optimizer and prints a table
of the final training/validation loss and accuracy and the seconds it took.
Part 2 babysits a run: a big net on 150 images overfits, `TrainingDiagnosis`
says so with its numbers and remedy, and the remedies (L2 on every kernel
with `penalize`, `Dropout`, `EarlyStopping`) are applied. No download: the
digits ship with scikit-learn.

    make demo                 # or: .venv/bin/python examples/demo.py
    python examples/demo.py --epochs 20 --jit
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

OPTIMIZERS = {
    "SGD(0.1)": lambda: ktk.optimizers.SGD(0.1),
    "Momentum(0.02, 0.9)": lambda: ktk.optimizers.Momentum(0.02, 0.9),
    "Momentum(ema, 0.2)": lambda: ktk.optimizers.Momentum(0.2, 0.9, ema=True),
    "Nesterov(0.02, 0.9)": lambda: ktk.optimizers.Momentum(
        0.02, 0.9, nesterov=True
    ),
    "Adagrad(0.05)": lambda: ktk.optimizers.Adagrad(0.05),
    "RMSProp(0.002)": lambda: ktk.optimizers.RMSProp(0.002),
    "Adam(0.002)": lambda: ktk.optimizers.Adam(0.002),
    "Adam(amsgrad)": lambda: ktk.optimizers.Adam(0.002, amsgrad=True),
}


def load_data(seed: int = 0):
    """Digits, split train/validation, standardized (the course's scaling)."""
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x.astype("float32"), y, test_size=0.2, random_state=seed, stratify=y
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std < 1e-3] = 1.0  # pixels that never vary in training stay 0
    return ((x_train - mean) / std, y_train), ((x_val - mean) / std, y_val)


def build_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def babysit(x, y, xv, yv, epochs: int) -> None:
    """Part 2: diagnose an overfitting run, then apply the remedies."""

    def big_net(dropout: float) -> keras.Model:
        layers = [keras.Input((64,))]
        for _ in range(2):
            layers.append(keras.layers.Dense(256, activation="relu"))
            if dropout:
                layers.append(ktk.layers.Dropout(dropout))
        layers.append(keras.layers.Dense(10, activation="softmax"))
        return keras.Sequential(layers)

    x, y = x[:150], y[:150]  # a small training set: large variance
    for title, dropout, l2, stop in [
        ("as is", 0.0, 0.0, False),
        ("with L2 on all kernels, dropout 0.3, early stopping",
         0.3, 1e-4, True),
    ]:
        keras.utils.set_random_seed(0)
        model = ktk.regularizers.penalize(big_net(dropout), l2=l2)
        model.compile(
            optimizer=ktk.optimizers.Adam(3e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        diagnosis = ktk.callbacks.TrainingDiagnosis(verbose=0)
        callbacks = [diagnosis]
        if stop:
            callbacks.append(
                ktk.callbacks.EarlyStopping(patience=10, verbose=0)
            )
        model.fit(
            x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
            verbose=0, callbacks=callbacks,
        )
        _, accuracy = model.evaluate(xv, yv, verbose=0)
        print(f"\n-- 2x256 ReLU net on 150 images, {title}: "
              f"validation accuracy {accuracy:.3f}")
        print(diagnosis.report())
        if stop:
            print(callbacks[-1].stop_reason)
        keras.backend.clear_session()


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--jit", action="store_true", help="jit_compile=True")
    parser.add_argument(
        "--babysit-epochs", type=int, default=40,
        help="epochs of part 2 (0 skips it)",
    )
    args = parser.parse_args(argv)

    (x, y), (xv, yv) = load_data()
    print(f"digits: {len(x)} training and {len(xv)} validation images, "
          f"{args.epochs} epochs, batch size {args.batch_size}, "
          f"jit_compile={args.jit}\n")
    header = (f"{'optimizer':<22}{'loss':>8}{'val_loss':>10}"
              f"{'acc':>8}{'val_acc':>9}{'seconds':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for name, make in OPTIMIZERS.items():
        keras.utils.set_random_seed(0)
        model = build_model()
        model.compile(
            optimizer=make(),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=args.jit,
        )
        start = time.perf_counter()
        history = model.fit(
            x, y, validation_data=(xv, yv), epochs=args.epochs,
            batch_size=args.batch_size, verbose=0,
        )
        seconds = time.perf_counter() - start
        last = {k: v[-1] for k, v in history.history.items()}
        rows.append({"optimizer": name, "seconds": seconds, **last})
        print(f"{name:<22}{last['loss']:>8.4f}{last['val_loss']:>10.4f}"
              f"{last['accuracy']:>8.3f}{last['val_accuracy']:>9.3f}"
              f"{seconds:>9.1f}", flush=True)
        keras.backend.clear_session()
    best = min(rows, key=lambda r: r["val_loss"])
    print(f"\nlowest validation loss: {best['optimizer']} "
          f"({best['val_loss']:.4f}); "
          f"mean validation accuracy "
          f"{np.mean([r['val_accuracy'] for r in rows]):.3f}")
    if args.babysit_epochs:
        print("\n== Babysitting: TrainingDiagnosis on a run that overfits ==")
        babysit(x, y, xv, yv, args.babysit_epochs)
    return rows


if __name__ == "__main__":
    main()
