"""What the recorder reads off a model and its data, as plain functions.

Sampling nested batches, the output layer, a scan of the inputs for
NaN/Inf, and the two losses at the initial weights: the data loss on the
probe batch and the weight-regularization penalty (Keras adds the latter
to every logged loss).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_training_kit import _compat


def _concat(batches: list, size: int) -> Any:
    """Concatenates the leading axis of nested batches, up to `size`."""
    first = batches[0]
    if isinstance(first, dict):
        return {k: _concat([b[k] for b in batches], size) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(
            _concat([b[i] for b in batches], size) for i in range(len(first))
        )
    if first is None:
        return None
    return np.concatenate([np.asarray(b) for b in batches])[:size]


def _sample(batches: list, size: int) -> tuple | None:
    xs, ys = [], []
    for batch in batches:
        if not isinstance(batch, tuple):
            batch = (batch,)
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        xs.append(keras.tree.map_structure(np.asarray, x))
        ys.append(None if y is None else keras.tree.map_structure(
            np.asarray, y))
    if not xs:
        return None
    return _concat(xs, size), (None if ys[0] is None else _concat(ys, size))


def output_layer(model: Any) -> Any:
    """The layer producing a single-output Sequential/functional model's
    output (public API only), or None."""
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        return None
    for layer in reversed(model.layers):
        try:
            if layer.output is outputs[0]:
                return layer
        except (AttributeError, ValueError):
            continue
    return None


def _scan_inputs(x: Any) -> tuple[int, int] | None:
    """NaN/Inf count and rows of the whole training input, for arrays."""
    flat = keras.tree.flatten(x)
    if not flat or not all(isinstance(a, np.ndarray) for a in flat):
        return None
    bad = rows = 0
    for a in flat:
        if a.dtype.kind not in "fc" or a.ndim == 0:
            continue
        fin = np.isfinite(a.reshape(a.shape[0], -1))
        bad += int(fin.size - fin.sum())
        rows += int((~fin.all(axis=1)).sum())
    return bad, rows


def initial_data_loss(model: Any, x: Any, y: Any) -> float | None:
    """The data loss of `model` on `(x, y)` (without regularization
    penalties: Karpathy's "verify loss @ init" is about the prediction,
    not the weight penalty); None when it cannot be computed."""
    try:
        loss = model.loss
        fn = keras.losses.get(loss) if isinstance(loss, str) else loss
        y_pred = model(x, training=False)
        value = keras.ops.mean(fn(y, y_pred))
        value = float(keras.ops.convert_to_numpy(value))
    except Exception:  # noqa: BLE001 (then the first batch's loss)
        return None
    return value if math.isfinite(value) else None


def weight_penalty(model: Any) -> float | None:
    """The weight regularizers' sum at the current weights (what Keras
    adds to the logged loss besides activity penalties); None when an
    activity regularizer makes it unknown without a forward pass."""
    if any(getattr(layer, "activity_regularizer", None) is not None
           for layer in _compat.flatten_layers(model)):
        return None
    try:
        total = 0.0
        for w in model.trainable_variables:
            if getattr(w, "regularizer", None) is not None:
                total += float(keras.ops.convert_to_numpy(
                    w.regularizer(w.value)))
    except Exception:  # noqa: BLE001 (unknown: compare as before)
        return None
    return total if math.isfinite(total) else None
