"""Independent measurements of one corpus run (plain Keras + TensorFlow).

Nothing here uses `keras_training_kit.diagnosis`: gradients come from a
`tf.GradientTape` over `model.compute_loss`, activations from a Keras
sub-model, per-batch losses from Keras' running epoch mean, and errors from
`model.predict` on the validation data.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def _finite(x) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x, dtype="float64"))))


def _kernels(model):
    return [w for w in model.trainable_weights if w.path.endswith("kernel")]


class Recorder(keras.callbacks.Callback):
    """Per-batch losses, non-finite weights and relative weight updates."""

    def __init__(self):
        super().__init__()
        self.batch_losses: list[list[float]] = []
        self.nan_epoch = None  # 1-based
        self.nan_where = None
        self.update_ratios: list[float] = []

    def _flat(self):
        return np.concatenate(
            [np.ravel(np.asarray(w)) for w in _kernels(self.model)]
        ).astype("float64")

    def on_train_begin(self, logs=None):
        self._prev = self._flat()

    def on_epoch_begin(self, epoch, logs=None):
        self._means: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self._means.append(float((logs or {}).get("loss", math.nan)))

    def on_epoch_end(self, epoch, logs=None):
        mean = np.asarray(self._means, dtype="float64")
        k = np.arange(1, len(mean) + 1)
        # Keras logs the running mean m_k; the k-th batch loss is
        # k m_k - (k - 1) m_{k-1}.
        batch = k * mean - np.concatenate([[0.0], (k[:-1] * mean[:-1])])
        self.batch_losses.append(batch.tolist())
        w = self._flat()
        logs = logs or {}
        if self.nan_epoch is None:
            bad_loss = [
                key for key, val in logs.items()
                if "loss" in key and not math.isfinite(float(val))
            ]
            if bad_loss or not _finite(w):
                self.nan_epoch = epoch + 1
                self.nan_where = bad_loss[0] if bad_loss else "weights"
        if _finite(w) and _finite(self._prev) and len(mean):
            norm = np.linalg.norm(self._prev)
            if norm > 0:
                step = np.linalg.norm(w - self._prev) / norm
                self.update_ratios.append(float(step / len(mean)))
        self._prev = w


def _probe(data, n=128):
    x, y = data["x"], data["y"]
    rows = np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)
    return x[rows][:n], y[rows][:n]


def _predict(model, x):
    """Eager forward pass (no `predict` function to trace: small data)."""
    return np.asarray(model(x, training=False))


def _loss(model, x, y) -> float:
    """The compiled loss (with regularization) on all of `(x, y)`."""
    y_pred = model(x, training=False)
    return float(model.compute_loss(x=x, y=y, y_pred=y_pred, training=False))


def gradients(model, x, y) -> dict:
    """Loss and per-kernel gradient RMS (first to last) on one batch."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    y = tf.convert_to_tensor(y)
    with tf.GradientTape() as tape:
        y_pred = model(x, training=False)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
    kernels = _kernels(model)
    grads = tape.gradient(loss, [w.value for w in kernels])
    rms = [
        float(np.sqrt(np.mean(np.square(np.asarray(g, "float64")))))
        for g in grads if g is not None
    ]
    norm = float(np.sqrt(sum(
        float(np.sum(np.square(np.asarray(g, "float64"))))
        for g in grads if g is not None
    )))
    return {"loss": float(loss), "rms": rms, "norm": norm}


def _act_name(layer):
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None)


def activations(model, x) -> dict:
    """Dead ReLU units and saturated sigmoid/tanh outputs (hidden layers)."""
    layers = [
        layer for layer in model.layers[:-1]
        if _act_name(layer) in ("relu", "sigmoid", "tanh")
    ]
    if not layers or not _finite(x):
        return {"dead_fraction": None, "saturated_fraction": None}
    sub = keras.Model(model.inputs, [layer.output for layer in layers])
    outs = sub(x, training=False)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    dead, units, sat, entries = 0, 0, 0, 0
    for layer, a in zip(layers, outs):
        a = np.asarray(a, "float64").reshape(len(x), -1)
        kind = _act_name(layer)
        if kind == "relu":
            dead += int(np.sum(np.all(a <= 0, axis=0)))
            units += a.shape[1]
        elif kind == "tanh":
            sat += int(np.sum(np.abs(a) > 0.99))
            entries += a.size
        else:
            sat += int(np.sum((a < 0.01) | (a > 0.99)))
            entries += a.size
    return {
        "dead_fraction": dead / units if units else None,
        "saturated_fraction": sat / entries if entries else None,
    }


def error(tags, y_true, y_pred) -> float:
    """Validation error: 1 - accuracy, or MSE / Var(y) for regression."""
    y_true = np.asarray(y_true, "float64")
    y_pred = np.nan_to_num(
        np.asarray(y_pred, "float64"), nan=0.0, posinf=1e30, neginf=-1e30
    )
    if "regression" in tags:
        y_pred = y_pred.reshape(y_true.shape)
        mse = float(np.mean((y_pred - y_true) ** 2))
        return min(mse / float(np.var(y_true)), 1e6)
    cut = 0.0 if "logits" in tags else 0.5
    if "multilabel" in tags or "binary" in tags:
        y_pred = y_pred.reshape(y_true.shape)
        return float(np.mean((y_pred > cut) != (y_true > 0.5)))
    labels = y_true.argmax(-1) if y_true.ndim > 1 else y_true
    if y_pred.shape[-1] == 1:  # a regression head on class labels
        guess = np.clip(np.round(y_pred[:, 0]), 0, labels.max())
    else:
        guess = y_pred.argmax(-1)
    return float(np.mean(guess != labels))


def chance_error(tags, y) -> float:
    """The error of the best constant prediction."""
    y = np.asarray(y, "float64")
    if "regression" in tags:
        return 1.0
    if "multilabel" in tags:
        p = y.mean(axis=0)
        return float(np.mean(np.minimum(p, 1 - p)))
    labels = y.argmax(-1) if y.ndim > 1 else y
    _, counts = np.unique(labels, return_counts=True)
    return float(1 - counts.max() / counts.sum())


def inputs(x) -> dict:
    """Spread of the (non-constant) feature scales, and target-free stats."""
    x = np.asarray(x, "float64").reshape(len(x), -1)
    x = x[np.all(np.isfinite(x), axis=1)]
    std = x.std(axis=0)
    live = std > 1e-8 * max(std.max(), 1e-300)
    std = std[live]
    return {
        "input_spread": float(std.max() / std.min()),
        "input_max_abs_mean": float(np.abs(x.mean(axis=0)).max()),
    }


def measure(setting, seed: int, run) -> dict:
    """Runs `setting` at `seed` through `run` and measures it."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    data = setting.make_data(seed)
    model = setting.build_model()
    px, py = _probe(data)
    g0 = gradients(model, px, py)
    rec = Recorder()
    out = run(setting, seed, callbacks=[rec], prebuilt=(data, model))
    hist = out["history"]
    xv, yv = data["validation_data"]
    finite_w = all(_finite(w) for w in model.get_weights())
    g1 = gradients(model, px, py) if finite_w else None
    pred = _predict(model, xv) if finite_w else np.full(
        (len(xv), 1), np.nan
    )
    tr_n = min(len(data["x"]), 512)
    xt, yt = _probe(data, tr_n)
    pred_t = _predict(model, xt) if finite_w else np.full(
        (len(xt), 1), np.nan
    )
    acts = activations(model, xv[:512]) if finite_w else {
        "dead_fraction": None, "saturated_fraction": None
    }
    val_end = _loss(model, xv, yv) if finite_w else math.nan
    loss = hist.get("loss", [])
    falls = [b < a for a, b in zip(loss, loss[1:])]
    cvs = [
        float(np.std(b) / abs(np.mean(b)))
        for b in rec.batch_losses if len(b) > 1 and np.mean(b) != 0
    ]

    def ratio(g):
        return g["rms"][0] / g["rms"][-1] if g and g["rms"][-1] > 0 else None

    return {
        "seconds": round(out["seconds"], 3),
        "epochs": len(loss),
        "loss": loss,
        "val_loss": hist.get("val_loss", []),
        "nan_epoch": rec.nan_epoch,
        "nan_where": rec.nan_where,
        "initial_loss": g0["loss"],
        "grad_rms_init": g0["rms"],
        "grad_ratio_init": ratio(g0),
        "grad_norm_init": g0["norm"],
        "grad_ratio_end": ratio(g1),
        "update_ratio": (
            float(np.median(rec.update_ratios)) if rec.update_ratios
            else None
        ),
        "batch_cv": float(np.median(cvs)) if cvs else None,
        "loss_fall_fraction": (
            float(np.mean(falls)) if falls else None
        ),
        "val_loss_end": val_end,
        "val_err": error(setting.tags, yv, pred),
        "train_err": error(setting.tags, yt, pred_t),
        "chance_err": chance_error(setting.tags, yv),
        "target_max_abs": float(np.nanmax(np.abs(data["y"]))),
        **inputs(data["x"]),
        **acts,
    }
