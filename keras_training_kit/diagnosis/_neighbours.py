"""Yardsticks for "does it work on the training data?": nearest neighbours
and, for linear models, a quadratic model.

The course's first diagnostic question needs a level to compare with. The
constant predictor is one (a run that ends near it learned nothing); a
model that ends well below it may still fit its own training data worse
than the simplest nonparametric learner predicts data it has not seen.
That learner is k nearest neighbours with leave-one-out predictions:
each training row is predicted from its k nearest *other* rows
(standardized features, Euclidean distance; k = 5, scikit-learn's
`KNeighborsClassifier` default), so its error is an honest estimate of
its error on new data. A model whose *training* error is significantly
larger (a paired sign test over the same rows) has a large bias: a more
flexible model fits what this one cannot.

A linear model is also compared with kernel ridge regression on all
products of two features (`quadratic_loo`, exact leave-one-out
predictions from the hat matrix): the next model class up, which fits a
square or a product of features that k-NN, in many dimensions, does not.

`compare` returns plain numbers for the `RunRecord`; the rule that judges
them is `rules.check_bias`. The neighbour search is a brute-force
distance matrix in NumPy over at most a few hundred rows (scikit-learn's
`NearestNeighbors` gives the same neighbours but costs a quarter second
to import inside `fit`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_training_kit.diagnosis.rules import thresholds as T
from keras_training_kit.diagnosis.rules.data import CROSS_ENTROPIES

_REGRESSION = {
    "mean_squared_error": "squared error",
    "huber": "squared error",
    "log_cosh": "squared error",
    "mean_absolute_error": "absolute error",
}
MIN_ROWS = 20  # fewer rows than this: no comparison


def supported(loss_name: str | None) -> bool:
    """Whether `compare` can judge a model trained with this loss."""
    return loss_name in CROSS_ENTROPIES or loss_name in _REGRESSION


def _features(x: np.ndarray) -> np.ndarray | None:
    """Rows flattened to float64 features (None: not numeric)."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiub" or x.ndim < 1:
        return None
    return x.reshape(len(x), -1).astype("float64")


def _standardized(x: np.ndarray) -> np.ndarray | None:
    std = x.std(axis=0)
    keep = std > 0
    if not keep.any():
        return None
    return (x[:, keep] - x[:, keep].mean(axis=0)) / std[keep]


def neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Indices `(n, k)` of each row's k nearest other rows."""
    sq = np.einsum("ij,ij->i", x, x)
    d = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d, np.inf)
    return np.argpartition(d, k - 1, axis=1)[:, :k]


def _classes(y: np.ndarray, y_pred: np.ndarray, loss: str, logits: bool):
    """(true class ids, predicted class ids), or None (multi-label)."""
    units = y_pred.shape[-1] if y_pred.ndim > 1 else 1
    if loss.startswith("binary"):
        if units != 1:
            return None  # multi-label: no single class per row
        cut = 0.0 if logits else 0.5
        truth = y.reshape(len(y), -1)
        if truth.shape[1] != 1:
            return None
        return (truth[:, 0] >= 0.5).astype("int64"), (
            y_pred.reshape(-1) > cut).astype("int64")
    if units < 2:
        return None
    if loss.startswith("sparse"):
        truth = y.reshape(-1)
        if truth.size != len(y_pred):
            return None
    else:
        truth = y.reshape(len(y), -1)
        if truth.shape[1] != units:
            return None
        truth = truth.argmax(axis=1)
    return truth.astype("int64"), y_pred.reshape(len(y_pred), -1).argmax(1)


def _vote(labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Majority class among the neighbours (ties: the smallest class id,
    as `scipy.stats.mode` and scikit-learn break them)."""
    votes = labels[idx]
    classes = np.unique(labels)
    counts = np.stack([(votes == c).sum(axis=1) for c in classes], axis=1)
    return classes[counts.argmax(axis=1)]


def _converged_linear(feats: np.ndarray, truth: np.ndarray,
                      classify: bool, power: int) -> np.ndarray:
    """Per-row training errors of the same model class trained to
    convergence on these rows: scikit-learn's (almost unregularized)
    `LogisticRegression`, or least squares."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if classify:
        if np.unique(truth).size < 2:
            return np.zeros(len(truth))
        fit = LogisticRegression(C=1e4, max_iter=2000).fit(feats, truth)
        return (fit.predict(feats) != truth).astype("float64")
    fit = LinearRegression().fit(feats, truth)
    return (np.abs(fit.predict(feats) - truth) ** power).mean(axis=1)


def quadratic_loo(feats: np.ndarray, targets: np.ndarray,
                  lams: Any = None) -> np.ndarray:
    """Leave-one-out predictions of kernel ridge regression with the
    degree-2 polynomial kernel `(1 + x.x' / d)^2` (every product of two
    features and every feature, as scikit-learn's `KernelRidge(kernel=
    "poly", degree=2, coef0=1, gamma=1/d)`).

    Exact, without refitting: with `K = V diag(w) V^T` and the hat matrix
    `H = K (K + lam I)^-1`, the prediction of row i from the others is
    `y_i - (y_i - (H y)_i) / (1 - H_ii)` (the ridge leave-one-out
    identity). `lam` is chosen from a grid of 13 values (1e-6 to 1 times
    the mean eigenvalue) by the mean squared leave-one-out residual, as
    generalized cross-validation does.

    Args:
        feats: `(n, d)` standardized features.
        targets: `(n, t)` targets (one-hot rows for classes).
        lams: the ridge penalties to choose from (default: the grid
            above).

    Returns:
        `(n, t)` leave-one-out predictions.
    """
    d = feats.shape[1]
    w, v = np.linalg.eigh((1.0 + feats @ feats.T / d) ** 2)
    w = np.clip(w, 0.0, None)
    vty = v.T @ targets
    best, out = np.inf, targets
    if lams is None:
        lams = max(float(w.mean()), 1e-12) * np.logspace(-6, 0, 13)
    for lam in lams:
        shrink = w / (w + lam)
        resid = targets - v @ (shrink[:, None] * vty)
        h = np.clip((v * v) @ shrink, 0.0, 1.0 - 1e-9)
        loo = targets - resid / (1.0 - h)[:, None]
        err = float(((loo - targets) ** 2).mean())
        if err < best:
            best, out = err, loo
    return out


def _versus(name: str, errors: np.ndarray, model: np.ndarray,
            best: np.ndarray | None) -> dict:
    """One yardstick's mean error and its row counts against the model
    (and against the converged linear model, where measured)."""
    out = {name: float(errors.mean()),
           f"model_worse_{name}": int((model > errors).sum()),
           f"{name}_worse": int((model < errors).sum())}
    if best is not None:
        out.update({f"linear_worse_{name}": int((best > errors).sum()),
                    f"linear_better_{name}": int((best < errors).sum())})
    return out


def compare(x: Any, y: Any, y_pred: Any, loss: str,
            from_logits: bool | None = None,
            linear: bool = False) -> dict | None:
    """The model's training error against k-NN's leave-one-out error.

    Args:
        x: a sample of the training inputs (one array).
        y: their targets.
        y_pred: the model's predictions on `x` (inference mode).
        loss: the canonical loss name (`rules.loss_name`).
        from_logits: whether `y_pred` are logits.
        linear: the model is linear (one weight layer): also measure a
            linear model trained to convergence on the same rows
            (`"linear"`, `"linear_worse"`, `"linear_better"`: its mean
            error and the rows it gets worse / better than k-NN), which
            tells a model class too simple for the data from a linear
            model that has not finished training; and a second
            yardstick, kernel ridge regression on every product of two
            features (`quadratic_loo`), whose leave-one-out errors give
            `"quadratic"` (its mean error), `"model_worse_quadratic"` /
            `"quadratic_worse"` (rows the model / it gets worse than the
            other) and `"linear_worse_quadratic"` /
            `"linear_better_quadratic"` (the same for the converged
            linear model). k-NN sees through any smooth boundary in a few
            dimensions (half-moons) but drowns in features that do not
            matter; the quadratic model is the next model class after the
            linear one and keeps its footing there (Friedman's problem: 5
            of 10 features used, a square and a product among them).

    Returns:
        `{"k", "rows", "kind", "model", "neighbours", "constant",
        "model_worse", "neighbours_worse"}`: the mean error on the same
        rows ("error rate", "squared error" or "absolute error") of the
        model, of k-NN and of the best constant predictor (the majority
        class, the mean, the median), and how many rows the model and
        k-NN each get strictly worse than the other; None when the loss,
        the shapes or the data do not allow a comparison.

    Example:

    >>> x = np.linspace(-3, 3, 60)[:, None]
    >>> y = (np.abs(x[:, 0]) < 1.5).astype("int64")  # not linearly separable
    >>> p = 1 / (1 + np.exp(-x[:, 0]))  # a linear model's guess
    >>> out = compare(x, y, p[:, None], "binary_crossentropy")
    >>> out["model"], out["neighbours"], out["model_worse"]
    (0.5, 0.0, 30)
    """
    if not supported(loss):
        return None
    feats = _features(x)
    try:
        y = np.asarray(y, dtype="float64")
        y_pred = np.asarray(y_pred, dtype="float64")
    except (TypeError, ValueError):
        return None
    if feats is None or len(y) != len(feats) or len(y_pred) != len(feats):
        return None
    ok = (np.isfinite(feats).all(axis=1)
          & np.isfinite(y.reshape(len(y), -1)).all(axis=1)
          & np.isfinite(y_pred.reshape(len(y_pred), -1)).all(axis=1))
    feats, y, y_pred = _standardized(feats[ok]), y[ok], y_pred[ok]
    k = T.NEIGHBOURS_K
    if feats is None or len(feats) < max(MIN_ROWS, k + 1):
        return None
    logits = from_logits is True  # else probabilities, as Keras reads them
    idx = neighbours(feats, k)
    if loss in CROSS_ENTROPIES:
        classes = _classes(y, y_pred, loss, logits)
        if classes is None:
            return None
        truth, guess = classes
        model = (guess != truth).astype("float64")
        knn = (_vote(truth, idx) != truth).astype("float64")
        constant = float(1.0 - np.bincount(truth).max() / truth.size)
        kind, power = "error rate", 0
    else:
        truth = y.reshape(len(y), -1)
        guess = y_pred.reshape(len(y_pred), -1)
        if guess.shape != truth.shape:
            return None
        kind = _REGRESSION[loss]
        power = 2 if kind == "squared error" else 1
        model = (np.abs(guess - truth) ** power).mean(axis=1)
        knn = (np.abs(truth[idx].mean(axis=1) - truth) ** power).mean(axis=1)
        centre = (truth.mean(axis=0) if power == 2
                  else np.median(truth, axis=0))
        constant = float((np.abs(truth - centre) ** power).mean())
    out = {
        "k": k,
        "rows": int(len(truth)),
        "kind": kind,
        "model": float(model.mean()),
        "neighbours": float(knn.mean()),
        "constant": constant,
        "model_worse": int((model > knn).sum()),
        "neighbours_worse": int((model < knn).sum()),
    }
    if linear:
        best = _converged_linear(feats, truth, kind == "error rate", power)
        out.update(linear=float(best.mean()),
                   linear_worse=int((best > knn).sum()),
                   linear_better=int((best < knn).sum()))
        if kind == "error rate":
            ids = np.unique(truth, return_inverse=True)[1]
            loo = quadratic_loo(feats, np.eye(ids.max() + 1)[ids])
            quad = (loo.argmax(axis=1) != ids).astype("float64")
        else:
            quad = (np.abs(quadratic_loo(feats, truth) - truth)
                    ** power).mean(axis=1)
        out.update(_versus("quadratic", quad, model, best))
    return out
