"""Linear models outside the corpus: does the diagnosis call `underfitting`
exactly where a model with a hidden layer does much better?

Eleven problems (scikit-learn's bundled data sets and generators, none in
`diagnosis_corpus`): some a linear model fits (breast cancer, diabetes,
wine, iris, digits, `make_classification`, `make_regression`), some it
cannot (`make_friedman2`, `make_friedman3`, concentric circles, an XOR of
two features). Each is trained at two seeds (70/30 split, standardized
features, standardized regression targets, Adam 0.01, batch 32, 60
epochs) as a linear model with `TrainingDiagnosis` and as its twin with
one hidden layer of 64 ReLU units (same data, seed and optimizer).

The label does not use the kit: a run is labelled *underfit* when the twin's
validation loss is at most half the linear model's (`evaluate`). The
table gives, per run, the linear model's problem codes, both validation
losses and their ratio; the summary counts underfitting findings among
the runs labelled underfit and among the others.

    python benchmarks/linear_underfitting.py [--seeds 0,1] [--epochs 60]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import datasets  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

LABEL_RATIO = 0.5  # twin's validation loss <= this x the linear model's


def _std(y):
    return ((y - y.mean()) / y.std()).astype("float32")


def _xor(seed=3):
    x = np.random.default_rng(seed).normal(size=(800, 4))
    return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype("int64"), "binary"


def problems() -> dict:
    """name -> () -> (x, y, kind) with kind binary / multiclass / regression."""
    def reg(make):
        return lambda: (lambda x, y: (x, _std(y), "regression"))(*make())

    return {
        "cancer": lambda: (*datasets.load_breast_cancer(return_X_y=True),
                           "binary"),
        "diabetes": reg(lambda: datasets.load_diabetes(return_X_y=True)),
        "wine": lambda: (*datasets.load_wine(return_X_y=True), "multiclass"),
        "iris": lambda: (*datasets.load_iris(return_X_y=True), "multiclass"),
        "digits": lambda: (*datasets.load_digits(return_X_y=True),
                           "multiclass"),
        "make_classification": lambda: (*datasets.make_classification(
            800, n_features=20, random_state=3), "binary"),
        "make_regression": reg(lambda: datasets.make_regression(
            800, n_features=15, noise=20, random_state=3)),
        "make_friedman2": reg(lambda: datasets.make_friedman2(
            800, noise=10, random_state=3)),
        "make_friedman3": reg(lambda: datasets.make_friedman3(
            800, noise=0.1, random_state=3)),
        "circles": lambda: (*datasets.make_circles(
            800, noise=0.1, factor=0.5, random_state=3), "binary"),
        "xor": _xor,
    }


def _split(x, y, seed):
    rng = np.random.default_rng(seed)
    i = rng.permutation(len(x))
    n = int(0.7 * len(x))
    scale = StandardScaler().fit(x[i[:n]])
    return (scale.transform(x[i[:n]]).astype("float32"), y[i[:n]],
            scale.transform(x[i[n:]]).astype("float32"), y[i[n:]])


def train(x, y, kind, seed, hidden, epochs):
    """(problem codes, validation loss) of one run."""
    xt, yt, xv, yv = _split(x, y, seed)
    keras.utils.set_random_seed(seed)
    units, act, loss = {
        "binary": (1, "sigmoid", "binary_crossentropy"),
        "regression": (1, None, "mean_squared_error"),
    }.get(kind, (int(y.max()) + 1, "softmax",
                 "sparse_categorical_crossentropy"))
    layers = [keras.Input((x.shape[1],))]
    layers += [keras.layers.Dense(64, activation="relu")] if hidden else []
    model = keras.Sequential(layers + [keras.layers.Dense(units, act)])
    model.compile(keras.optimizers.Adam(0.01), loss)
    diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
    model.fit(xt, yt, validation_data=(xv, yv), epochs=epochs, batch_size=32,
              callbacks=[diag], verbose=0)
    return ([f.code for f in diag.findings.problems],
            float(model.evaluate(xv, yv, verbose=0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--epochs", type=int, default=60)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| problem | seed | linear model's codes | linear val | twin val "
          "| ratio | label |")
    print("|---|---|---|---|---|---|---|")
    hits = {True: [0, 0], False: [0, 0]}  # label -> [flagged, runs]
    for name, make in problems().items():
        x, y, kind = make()
        for seed in seeds:
            codes, lin = train(x, y, kind, seed, False, args.epochs)
            _, twin = train(x, y, kind, seed, True, args.epochs)
            underfit = twin <= LABEL_RATIO * lin
            hits[underfit][0] += "underfitting" in codes
            hits[underfit][1] += 1
            print(f"| {name} | {seed} | {', '.join(codes) or '-'} | "
                  f"{lin:.4g} | {twin:.4g} | {twin / lin:.2f} | "
                  f"{'underfit' if underfit else 'fits'} |", flush=True)
    print(f"\nunderfitting found on {hits[True][0]}/{hits[True][1]} runs "
          f"labelled underfit (twin <= {LABEL_RATIO} x the linear model's "
          f"validation loss) and on {hits[False][0]}/{hits[False][1]} of "
          f"the others")


if __name__ == "__main__":
    main()
