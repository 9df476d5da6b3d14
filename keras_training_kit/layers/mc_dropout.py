"""Monte-Carlo dropout: dropout kept on at prediction, as an ensemble."""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from keras_training_kit import _compat
from keras_training_kit import _validation as v
from keras_training_kit.layers.dropout import Dropout

# Rows (inputs x samples) sent through the model in one call when
# `batch_size=None`: large enough to amortize the call, small enough for
# memory on CPU.
_DEFAULT_ROWS_PER_CALL = 8192


_KINDS = (
    Dropout,
    keras.layers.Dropout,  # includes SpatialDropout1D/2D/3D
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)


def _dropout_layers(model: keras.layers.Layer) -> list:
    layers = _compat.flatten_layers(model, include_self=True, recursive=True)
    return [layer for layer in layers if isinstance(layer, _KINDS)]


class _AlwaysSample(keras.layers.Layer):
    """Calls a dropout layer with `training=True`, whatever the caller says."""

    def __init__(self, layer: keras.layers.Layer, **kwargs) -> None:
        super().__init__(name=f"{layer.name}_mc", **kwargs)
        self.layer = layer

    def call(self, inputs, training=None):
        return self.layer(inputs, training=True)

    def compute_output_shape(self, input_shape):
        return input_shape


def _sampling_model(model: keras.layers.Layer):
    """`model` with its dropout layers always sampling, and what is left.

    Sequential and functional models (nested ones too) are rebuilt by
    `keras.models.clone_model` around the *same* layers (shared weights and
    statistics, nothing copied), each dropout layer wrapped in
    `_AlwaysSample`. Returns `(model, rest)`: `rest` are the dropout layers
    clone_model cannot reach (inside a subclassed model or a custom layer),
    which `_dropout_always_on` handles.
    """
    wrapped = set()

    def clone(layer):
        if isinstance(layer, _KINDS):
            wrapped.add(id(layer))
            return _AlwaysSample(layer)
        return layer  # shared, not copied

    if isinstance(model, keras.Model):
        try:
            model = keras.models.clone_model(
                model, clone_function=clone, recursive=True
            )
        except ValueError:  # a subclassed model: clone_model cannot rewire
            wrapped.clear()
    rest = [layer for layer in _dropout_layers(model)
            if id(layer) not in wrapped]
    return model, rest


@contextlib.contextmanager
def _dropout_always_on(layers: list):
    """Forces `training=True` in these layers' `call`, and only in them.

    Only for dropout layers `keras.models.clone_model` cannot reach (inside
    subclassed models and custom layers): their instance `call` is
    shadowed while the context is open.
    """
    missing = object()
    saved = []
    try:
        for layer in layers:
            saved.append((layer, layer.__dict__.get("call", missing)))
            original = type(layer).call.__get__(layer)

            def call(inputs, training=None, _original=original, **kwargs):
                return _original(inputs, training=True, **kwargs)

            object.__setattr__(layer, "call", call)
        yield
    finally:
        for layer, previous in saved:
            if previous is missing:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", previous)


def predict_with_dropout(
    model: keras.layers.Layer,
    x,
    samples: int = 30,
    batch_size: int | None = None,
):
    """Monte-Carlo dropout ensemble prediction: mean and spread.

    Runs the model `samples` times with fresh dropout masks and returns
    the mean and standard deviation of the outputs over those sub-network
    samples (Gal & Ghahramani's MC dropout; the course's "dropout is an
    ensemble of sub-networks sharing parameters"):

    ```
    y_s  = model(x) with dropout masks m_s,   s = 1..samples
    mean = (1 / samples) * sum_s y_s
    std  = sqrt((1 / samples) * sum_s (y_s - mean) ** 2)
    ```

    Only the dropout layers (`ktk.layers.Dropout` in either `scale_at`
    convention, `keras.layers.Dropout`, `SpatialDropout*`,
    `GaussianDropout`, `AlphaDropout`) run in training mode; the model
    is called with `training=False`, so `BatchNormalization` uses its
    moving statistics, not the statistics of the replicated batch. For
    Sequential and functional models this is a `keras.models.clone_model`
    of the model around the same layers (no weight is copied), with each
    dropout layer wrapped to sample; dropout layers inside subclassed
    models or custom layers, which cloning cannot reach, have their `call`
    overridden for the duration of the call (restored on exit, also on
    error). The model itself is never modified. Works on every backend.

    Batched: each chunk of `batch_size` rows is tiled `samples` times and
    sent through the model in one compiled call, so every replica draws
    its own mask; there is no Python loop over rows or over samples.

    Args:
        model: a Keras model (Sequential, functional or subclassed).
        x: inputs: an array, or a list/dict of arrays for multi-input
            models.
        samples: int >= 1, number of sampled sub-networks. Defaults to
            `30`.
        batch_size: int >= 1, input rows per call (the model sees
            `batch_size * samples` rows). Defaults to `None`: as many rows
            as keep the call below 8192 replicated rows.

    Returns:
        `(mean, std)`: float64 NumPy arrays shaped like the model's output
        (or the same nested structure for multi-output models); `std` is
        the population standard deviation over the samples.

    Example:

    >>> import keras, numpy as np, keras_training_kit as ktk
    >>> model = keras.Sequential([
    ...     keras.Input((4,)), keras.layers.Dense(8),
    ...     ktk.layers.Dropout(0.5), keras.layers.Dense(1)])
    >>> x = np.ones((3, 4), "float32")
    >>> mean, std = ktk.layers.predict_with_dropout(model, x, samples=50)
    >>> mean.shape, std.shape, bool((std > 0).all())
    ((3, 1), (3, 1), True)

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
    """
    samples = v.check_positive_int("samples", samples)
    if batch_size is not None:
        batch_size = v.check_positive_int("batch_size", batch_size)
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Argument `model` must be a Keras model or layer. "
            f"Received: model={model!r}"
        )
    x = keras.tree.map_structure(np.asarray, x)
    n = int(keras.tree.flatten(x)[0].shape[0])
    if n < 1:
        raise ValueError(
            f"Argument `x` must hold at least one row. Received: {n} rows"
        )
    if batch_size is None:
        batch_size = max(1, _DEFAULT_ROWS_PER_CALL // samples)

    def tile(a):
        return np.tile(a, (samples,) + (1,) * (a.ndim - 1))

    def moments(y, rows):
        y = keras.ops.convert_to_numpy(y)
        y = y.reshape((samples, rows) + y.shape[1:]).astype("float64")
        return y.mean(axis=0), y.std(axis=0)

    sampling, rest = _sampling_model(model)
    forward = _compiled(sampling)
    structure, parts = None, []  # parts[chunk][output] = (mean, std)
    # A Python loop over chunks of `batch_size` rows only; within a chunk
    # all rows and all samples go through the model in one call.
    with _dropout_always_on(rest):
        for start in range(0, n, batch_size):
            chunk = keras.tree.map_structure(
                lambda a: tile(a[start : start + batch_size]), x
            )
            rows = min(batch_size, n - start)
            out = forward(chunk)
            structure = out if structure is None else structure
            parts.append([moments(y, rows) for y in keras.tree.flatten(out)])
    outputs = range(len(parts[0]))
    mean = [np.concatenate([p[i][0] for p in parts]) for i in outputs]
    std = [np.concatenate([p[i][1] for p in parts]) for i in outputs]
    return (
        keras.tree.pack_sequence_as(structure, mean),
        keras.tree.pack_sequence_as(structure, std),
    )


def _compiled(model: keras.layers.Layer):
    """`model(x, training=False)`, traced once per input signature."""

    def forward(inputs):
        return model(inputs, training=False)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(forward, reduce_retracing=True)
    return forward
