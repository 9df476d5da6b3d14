"""Population statistics for batch normalization: the course's ideal."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_training_kit import _compat
from keras_training_kit import _validation as v
from keras_training_kit.layers.batch_normalization import BatchNormalization


def _is_batch_norm(layer: Any) -> bool:
    return isinstance(
        layer, (BatchNormalization, keras.layers.BatchNormalization)
    )


def _all_layers(model: Any) -> list:
    """Every layer inside `model`, nested models and layers included."""
    seen: dict[int, Any] = {}
    stack = [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen[id(layer)] = layer
        # Tracked sublayers of any layer (nested models, wrappers, custom
        # blocks); `.layers` covers models.
        children = list(getattr(layer, "layers", []) or [])
        if isinstance(layer, keras.layers.Layer):
            children += _compat.flatten_layers(
                layer, include_self=False, recursive=False
            )
        stack.extend(children)
    return [x for x in seen.values() if x is not model]


class _Moments:
    """Exact mean and biased variance over batches (Chan et al. 1979).

    Each batch is reduced in float64 by two passes (mean, then squared
    deviations) and merged with the pairwise update
    `M2 = M2_a + M2_b + delta**2 * n_a * n_b / n`, so the result equals the
    variance over all rows at once, not the mean of batch variances.
    """

    def __init__(self) -> None:
        self.n = None
        self.mean = None
        self.m2 = None

    def update(self, x: np.ndarray, axes: tuple, weight: Any = None) -> None:
        x = np.asarray(x, dtype=np.float64)
        if weight is None:
            n_b = np.full(
                [1 if i in axes else s for i, s in enumerate(x.shape)],
                float(np.prod([x.shape[i] for i in axes])),
            )
            mean_b = x.mean(axis=axes, keepdims=True)
            m2_b = np.square(x - mean_b).sum(axis=axes, keepdims=True)
        else:
            w = np.broadcast_to(weight, x.shape).astype(np.float64)
            n_b = w.sum(axis=axes, keepdims=True)
            mean_b = (w * x).sum(axis=axes, keepdims=True) / np.maximum(n_b, 1)
            m2_b = (w * np.square(x - mean_b)).sum(axis=axes, keepdims=True)
        if self.n is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        safe_n = np.maximum(n, 1)
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / safe_n
        self.m2 = self.m2 + m2_b + np.square(delta) * self.n * n_b / safe_n
        self.n = n

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        n = np.maximum(self.n, 1)
        return self.mean, self.m2 / n


def _feature_axes(layer: Any, rank: int) -> list[int]:
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [
        layer.axis
    ]
    return sorted(int(a) % rank for a in axes)


def _call_order(model: Any, layers: list, probe: Any) -> list:
    """The batch-norm layers of `layers` in the order a forward pass runs them.

    Nested models and custom blocks may list their layers in any order;
    the order of execution is what "each layer after the earlier ones"
    means.
    """
    order: list = []
    with _Intercept(layers, lambda layer, x, mask: order.append(layer)):
        model(probe, training=False)
    ranked = list(dict.fromkeys(id(layer) for layer in order))
    by_id = {id(layer): layer for layer in layers}
    return [by_id[i] for i in ranked] + [
        layer for layer in layers if id(layer) not in ranked
    ]


def _graph_inputs(model: Any, layers: list) -> list | None:
    """Sub-models from the model's inputs to each layer's input, or None.

    The public-API path, for Sequential and functional models whose
    batch-norm layers all sit in the model's own graph (not in a nested
    model or custom layer), each called once, with no masking in the model
    (a sub-model does not return the mask). Returned in graph order, which
    is the order a forward pass runs them.
    """
    if not isinstance(model, keras.Model):
        return None
    try:
        inputs = model.input  # the structure the model is called with
        own = [layer for layer in model.layers if _is_batch_norm(layer)]
    except (AttributeError, ValueError):
        return None
    if inputs is None or len(own) != len(layers):
        return None
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Masking) or getattr(
            layer, "mask_zero", False
        ):
            return None
    probes = []
    for layer in own:
        try:
            probes.append((layer, keras.Model(inputs, layer.input)))
        except (AttributeError, ValueError):  # shared layer, several nodes
            return None
    return probes


class _Intercept:
    """Temporarily reports the inputs of some layers as a model runs.

    The instance attribute `call` shadows the class method; Keras' `__call__`
    still passes `training` and `mask` because it inspects the class's
    signature.
    """

    def __init__(self, layers: list, report: Any) -> None:
        self.layers = layers
        self.report = report

    def __enter__(self) -> "_Intercept":
        for layer in self.layers:
            original = layer.call

            def call(*args, _layer=layer, _orig=original, **kwargs):
                inputs = args[0] if args else kwargs["inputs"]
                self.report(_layer, inputs, kwargs.get("mask"))
                return _orig(*args, **kwargs)

            layer.__dict__["call"] = call
        return self

    def __exit__(self, *exc: Any) -> None:
        for layer in self.layers:
            layer.__dict__.pop("call", None)


def recalibrate_batch_norm(
    model: keras.Model, x: Any, batch_size: int = 256
) -> keras.Model:
    """Sets every batch-norm layer's moving statistics to population ones.

    The course's "ideal solution" for batch normalization at test time: use
    the mean `mu` and variance `sigma^2` of the whole training set instead
    of the moving averages accumulated during training. For each batch-norm
    layer (`ktk.layers.BatchNormalization` and
    `keras.layers.BatchNormalization`, inside nested models and custom
    layers too), in the order the forward pass runs them:

    ```
    z_i              = inputs of the layer for row i of x, in inference mode
    moving_mean     <- (1/N) * sum_i z_i
    moving_variance <- (1/N) * sum_i (z_i - moving_mean)**2
    ```

    where sums run over all N rows of `x` (and all non-feature positions,
    e.g. the pixels of a feature map; masked positions are left out).
    Layer `k` is measured after layers `1..k-1` have been recalibrated, so
    each layer sees the inputs it will see at test time. The variance is
    exact (per-batch two-pass sums merged with Chan's parallel update), not
    an average of batch variances. Costs one inference pass over `x` per
    batch-norm layer. Works on every backend.

    How the inputs are read: in Sequential and functional models whose
    batch-norm layers are in the model's own graph, by a sub-model
    `keras.Model(model.input, layer.input)` per layer (public API). For
    layers inside nested models, custom layers or subclassed models, and
    for masked inputs, by shadowing the layer's `call` while it runs
    (restored on exit).

    Args:
        model: A built Keras model.
        x: Inputs (a NumPy array, tensor, or a structure of them matching
            the model's inputs), typically the training set.
        batch_size: Rows per forward pass, a positive integer.
            Defaults to `256`.

    Returns:
        The same model, with its batch-norm statistics replaced.

    Example:

    >>> import keras, numpy as np, keras_training_kit as ktk
    >>> model = keras.Sequential([
    ...     keras.Input((2,)), ktk.layers.BatchNormalization()])
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]], "float32")
    >>> _ = ktk.layers.recalibrate_batch_norm(model, x)
    >>> [float(v) for v in model.layers[0].moving_mean.numpy()]
    [2.0, 20.0]
    """
    batch_size = v.check_positive_int("batch_size", batch_size)
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            "Argument `model` must be a Keras model or layer. "
            f"Received: model={type(model).__name__}"
        )
    flat = keras.tree.flatten(x)
    sizes = {
        int(a.shape[0]) if getattr(a, "shape", None) else None for a in flat
    }
    if not flat or None in sizes or len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            "Argument `x` must be an array or tensor (or a structure of them) "
            "with the same, nonzero number of rows. Received: "
            f"x={type(x).__name__}"
        )
    n = sizes.pop()
    batches = [
        keras.tree.map_structure(lambda a, s=s: a[s:s + batch_size], x)
        for s in range(0, n, batch_size)
    ]
    layers = [layer for layer in _all_layers(model) if _is_batch_norm(layer)]
    if not layers:
        return model
    probes = _graph_inputs(model, layers)
    if probes is None:
        probes = [(layer, None) for layer in _call_order(
            model, layers, batches[0]
        )]
    for layer, probe in probes:
        moments = _Moments()

        def measure(inputs, mask, _layer=layer, _moments=moments):
            z = keras.ops.convert_to_numpy(
                keras.ops.cast(inputs, "float32")
            )
            rank = z.ndim
            features = _feature_axes(_layer, rank)
            axes = tuple(i for i in range(rank) if i not in features)
            weight = None
            if mask is not None:
                weight = keras.ops.convert_to_numpy(mask)[..., None]
            _moments.update(z, axes, weight)

        if probe is not None:  # sub-model: the layer's inputs directly
            for batch in batches:
                measure(probe(batch, training=False), None)
        else:  # nested or custom layers: watch the layer's inputs

            def report(target, inputs, mask, _layer=layer, _m=measure):
                if target is _layer:
                    _m(inputs, mask)

            with _Intercept([layer], report):
                for batch in batches:
                    model(batch, training=False)
        if moments.n is None:
            continue  # the layer never ran: nothing to measure
        mean, variance = moments.result()
        shape = tuple(layer.moving_mean.shape)
        layer.moving_mean.assign(
            mean.reshape(shape).astype(layer.moving_mean.dtype)
        )
        layer.moving_variance.assign(
            variance.reshape(shape).astype(layer.moving_variance.dtype)
        )
        # Keras' batch renormalization keeps a moving standard deviation
        # from which it re-derives the variance: keep the two consistent.
        stddev = getattr(layer, "moving_stddev", None)
        if stddev is not None:
            stddev.assign(
                np.sqrt(variance + layer.epsilon)
                .reshape(shape).astype(stddev.dtype)
            )
    return model
