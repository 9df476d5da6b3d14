"""The tensor helpers of `Probe`."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

# Activation functions a monitored layer may end in, and their kind.
_KINDS = {"relu": "relu", "leaky_relu": "relu", "elu": "relu",
          "sigmoid": "sigmoid", "tanh": "tanh"}
_SATURATION = 0.99  # |tanh| > 0.99; sigmoid < 0.01 or > 0.99


def activation_name(layer: Any) -> str | None:
    """The activation a layer ends in, lower case ("relu", "leaky_relu",
    "elu", "softmax", "sigmoid", "tanh", ...), else None (linear)."""
    if isinstance(layer, keras.layers.ReLU):
        return "leaky_relu" if float(layer.negative_slope) else "relu"
    if isinstance(layer, (keras.layers.LeakyReLU, keras.layers.PReLU)):
        return "leaky_relu"
    if isinstance(layer, keras.layers.ELU):
        return "elu"
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    act = getattr(layer, "activation", None)
    name = act if isinstance(act, str) else getattr(act, "__name__", None)
    return None if name in (None, "linear") else str(name).lower()


def _recurrent(layer: Any) -> bool:
    """LSTM/GRU: their output is not their `activation` (SimpleRNN's is)."""
    return isinstance(layer, keras.layers.RNN) and not isinstance(
        layer, keras.layers.SimpleRNN
    )


def _graph_io(model: Any) -> tuple[Any, Any] | None:
    """The symbolic inputs and outputs (in the model's structure), or None."""
    try:
        if isinstance(model, keras.Sequential):
            return model.inputs[0], model.outputs[0]
        return model.input, model.output
    except (AttributeError, ValueError, TypeError, IndexError):
        return None  # a subclassed model: no graph to read layers from


def _to_tensor(a: Any) -> Any:
    a = a if a is None or hasattr(a, "shape") else np.asarray(a)
    if isinstance(a, np.ndarray) and a.dtype == np.float64:
        a = a.astype(keras.backend.floatx())  # as Keras' data adapters do
    return a if a is None else ops.convert_to_tensor(a)


def _numpy(a: Any) -> np.ndarray:
    # Keras' torch `convert_to_numpy` warns under NumPy 2 (`__array__`).
    if keras.backend.backend() == "torch":
        return a.cpu().numpy()
    return ops.convert_to_numpy(a)


def _count(a: Any) -> Any:
    """NaN/Inf entries of a tensor, as int32 (0 for integer tensors)."""
    if not keras.backend.is_float_dtype(a.dtype):
        return ops.zeros((), "int32")
    finite = ops.sum(ops.cast(ops.isfinite(a), "int32"))
    return ops.size(a) - finite


def _rms(a: Any) -> Any:
    """sqrt(mean(a^2)) in float32 (inf past 1.8e19: exploded anyway)."""
    return ops.sqrt(ops.mean(ops.square(ops.cast(a, "float32"))))

