"""Small seeded data sets for the diagnosis corpus (no downloads).

Every maker takes a seed and returns
`{"x": ..., "y": ..., "validation_data": (xv, yv)}` of NumPy arrays. The seed
picks the train/validation split (bundled data) or the sample (generated
data); everything is small so that one run takes a few seconds on one core.
Faults that live in the data (raw scales, huge targets, a NaN row, label
noise) are options of these makers, so a faulty setting and its fixed twin
differ in exactly one thing.
"""

from __future__ import annotations

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split


def _split(x, y, seed, n_train, n_val, stratify=True):
    strat = y if stratify else None
    xt, xv, yt, yv = train_test_split(
        x, y, train_size=n_train, test_size=n_val, random_state=seed,
        stratify=strat,
    )
    return xt, yt, xv, yv


def _standardize(xt, xv):
    mean = xt.mean(axis=0)
    std = xt.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)  # constant features stay constant
    return (xt - mean) / std, (xv - mean) / std


def _pack(xt, yt, xv, yv):
    return {"x": xt, "y": yt, "validation_data": (xv, yv)}


def _feature_scales(n, rng):
    """Per-feature scales spread over five decades, and far-off offsets."""
    return 10.0 ** rng.uniform(-2, 3, n), rng.uniform(-1, 1, n) * 1e3


def digits(
    seed, n_train=600, n_val=300, scale="std", image=False,
    label_noise=0.0, nan_row=False, one_hot=False,
):
    """scikit-learn's 8x8 digits (10 classes).

    scale: "std" (standardized), "unit" (pixels / 16, in [0, 1]), "raw"
    (0..16), "spread" (each feature multiplied by 10**U(-2, 3) plus an
    offset: features on very different scales).
    """
    x, y = datasets.load_digits(return_X_y=True)
    xt, yt, xv, yv = _split(x, y, seed, n_train, n_val)
    if scale == "std":
        xt, xv = _standardize(xt, xv)
    elif scale == "unit":
        xt, xv = xt / 16.0, xv / 16.0
    elif scale == "spread":
        s, o = _feature_scales(x.shape[1], np.random.default_rng(1000 + seed))
        xt, xv = xt * s + o, xv * s + o
    rng = np.random.default_rng(seed)
    if label_noise:
        flip = rng.random(len(yt)) < label_noise
        yt = yt.copy()
        yt[flip] = rng.integers(0, 10, flip.sum())
    xt, xv = xt.astype("float32"), xv.astype("float32")
    if nan_row:
        xt = xt.copy()
        xt[rng.integers(0, len(xt))] = np.nan
    if image:
        xt, xv = xt.reshape(-1, 8, 8, 1), xv.reshape(-1, 8, 8, 1)
    yt, yv = yt.astype("int32"), yv.astype("int32")
    if one_hot:
        yt = np.eye(10, dtype="float32")[yt]
        yv = np.eye(10, dtype="float32")[yv]
    return _pack(xt, yt, xv, yv)


def cancer(seed, n_train=300, n_val=200, scale="std"):
    """Breast cancer (binary, 30 features on scales 1e-3 .. 4e3 when raw)."""
    x, y = datasets.load_breast_cancer(return_X_y=True)
    xt, yt, xv, yv = _split(x, y, seed, n_train, n_val)
    if scale == "std":
        xt, xv = _standardize(xt, xv)
    return _pack(
        xt.astype("float32"), yt.astype("float32"),
        xv.astype("float32"), yv.astype("float32"),
    )


def wine(seed, scale="std"):
    """Wine (3 classes, 13 features; proline ~1e3, hue ~1 when raw)."""
    x, y = datasets.load_wine(return_X_y=True)
    xt, yt, xv, yv = _split(x, y, seed, 118, 60)
    if scale == "std":
        xt, xv = _standardize(xt, xv)
    return _pack(
        xt.astype("float32"), yt.astype("int32"),
        xv.astype("float32"), yv.astype("int32"),
    )


def moons(
    seed, n_train=400, n_val=200, noise=0.2, kind="moons", scale="std",
    bad_row=None,
):
    """Two moons or two circles (binary, 2 features).

    scale "spread": the second feature times 1e3 plus 5e3. bad_row: "nan"
    or "inf" puts that value into one training row.
    """
    n = n_train + n_val
    if kind == "moons":
        x, y = datasets.make_moons(n, noise=noise, random_state=seed)
    else:
        x, y = datasets.make_circles(
            n, noise=noise, factor=0.5, random_state=seed
        )
    xt, yt, xv, yv = _split(x, y, seed, n_train, n_val)
    if scale == "std":
        xt, xv = _standardize(xt, xv)
    elif scale == "spread":
        s = np.array([1e-2, 1e3])
        o = np.array([0.0, 5e3])
        xt, xv = xt * s + o, xv * s + o
    xt = xt.astype("float32")
    if bad_row is not None:
        xt[np.random.default_rng(seed).integers(0, len(xt))] = float(bad_row)
    return _pack(
        xt, yt.astype("float32"), xv.astype("float32"), yv.astype("float32")
    )


def friedman(
    seed, n_train=400, n_val=200, noise=0.5, scale="std", target_scale=1.0,
    target="std",
):
    """make_friedman1 regression (10 features, y roughly in [0, 30]).

    target "std": y standardized with the training mean/std; "raw": y as
    generated; either is then multiplied by `target_scale` (1e7 gives
    targets up to ~1e8).
    """
    x, y = datasets.make_friedman1(
        n_train + n_val, noise=noise, random_state=seed
    )
    xt, yt, xv, yv = _split(x, y, seed, n_train, n_val, stratify=False)
    if scale == "std":
        xt, xv = _standardize(xt, xv)
    elif scale == "spread":
        s, o = _feature_scales(x.shape[1], np.random.default_rng(2000 + seed))
        xt, xv = xt * s + o, xv * s + o
    if target == "std":
        m, sd = yt.mean(), yt.std()
        yt, yv = (yt - m) / sd, (yv - m) / sd
    yt, yv = yt * target_scale, yv * target_scale
    return _pack(
        xt.astype("float32"), yt.astype("float32"),
        xv.astype("float32"), yv.astype("float32"),
    )


def diabetes(seed, target_scale=1.0, target="std"):
    """Diabetes regression (10 standardized features, y in 25..346 raw)."""
    x, y = datasets.load_diabetes(return_X_y=True)
    xt, yt, xv, yv = _split(x, y, seed, 300, 142, stratify=False)
    xt, xv = _standardize(xt, xv)
    if target == "std":
        m, sd = yt.mean(), yt.std()
        yt, yv = (yt - m) / sd, (yv - m) / sd
    yt, yv = yt * target_scale, yv * target_scale
    return _pack(
        xt.astype("float32"), yt.astype("float32"),
        xv.astype("float32"), yv.astype("float32"),
    )


def sequence(seed, n_train=400, n_val=200, steps=12, task="binary",
             target_scale=1.0):
    """A small sequence task: 12 steps x 2 features of N(0, 1) noise.

    task "binary": is the running sum of feature 0 over the first 4 steps
    positive; "regression": that sum plus half the last step's feature 1.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    x = rng.normal(size=(n, steps, 2)).astype("float32")
    s = x[:, :4, 0].sum(axis=1)
    if task == "binary":
        y = (s > 0).astype("float32")
    else:
        y = ((s + 0.5 * x[:, -1, 1]) * target_scale).astype("float32")
    return _pack(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def blobs(seed, n_train=400, n_val=200, imbalance=None, n_classes=2):
    """make_classification: 10 features, optional class imbalance."""
    weights = None if imbalance is None else [1 - imbalance, imbalance]
    x, y = datasets.make_classification(
        n_train + n_val, n_features=10, n_informative=5,
        n_classes=n_classes, weights=weights, class_sep=1.5,
        random_state=seed,
    )
    xt, yt, xv, yv = _split(x, y, seed, n_train, n_val)
    xt, xv = _standardize(xt, xv)
    dtype = "float32" if n_classes == 2 else "int32"
    return _pack(
        xt.astype("float32"), yt.astype(dtype),
        xv.astype("float32"), yv.astype(dtype),
    )


def multilabel(seed, n_train=400, n_val=200):
    """make_multilabel_classification: 20 count features, 5 labels."""
    x, y = datasets.make_multilabel_classification(
        n_train + n_val, n_features=20, n_classes=5, n_labels=2,
        random_state=seed,
    )
    x = np.log1p(x)
    xt, xv = _standardize(x[:n_train], x[n_train:])
    return _pack(
        xt.astype("float32"), y[:n_train].astype("float32"),
        xv.astype("float32"), y[n_train:].astype("float32"),
    )
