"""Argument checks of `repair`: every bad input fails before training."""

from __future__ import annotations

import math

import numpy as np

from keras_training_kit import _validation as v

_RESERVED = ("x", "y", "validation_data", "validation_split", "epochs")


def check_inputs(build_model, x, y, validation_data, validation_split,
                 epochs, max_attempts, objective, seed, verbose, fit_kwargs):
    """Raises `ValueError` for any bad argument, before any training."""
    if not callable(build_model):
        raise ValueError(
            "Argument `build_model` must be a function returning a fresh "
            f"compiled keras.Model. Received: build_model={build_model!r}"
        )
    v.check_positive_int("max_attempts", max_attempts)
    v.check_positive_int("epochs", epochs)
    v.check_positive_int("seed", seed, minimum=0)
    v.check_choice("verbose", verbose, (0, 1, 2))
    if not isinstance(objective, str) or not objective:
        raise ValueError(
            "Argument `objective` must be the name of a logged quantity, "
            f"e.g. 'val_loss'. Received: objective={objective!r}"
        )
    for key in _RESERVED:
        if key in fit_kwargs:
            raise ValueError(
                f"Argument `{key}` is an argument of `repair` itself; do not "
                "pass it twice."
            )
    if validation_data is None and validation_split is None:
        raise ValueError(
            "Argument `validation_data` or `validation_split` is required: "
            "repair keeps a change only if the validation objective "
            "improves. Received: validation_data=None, validation_split=None"
        )
    if validation_split is not None:
        v.check_range("validation_split", validation_split, 0.0, 1.0,
                      low_open=True, high_open=True)
    for name, value in (("x", x), ("y", y)):
        if value is None or not hasattr(value, "__len__") or isinstance(
            value, (dict, str)
        ):
            raise ValueError(
                f"Argument `{name}` must be an array (NumPy or array-like) "
                f"with one row per example. Received: {name}="
                f"{type(value).__name__}"
            )


def split(x, y, sample_weight, validation_data, validation_split):
    """`(x, y, sample_weight, (x_val, y_val, sample_weight_val))`."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(
            validation_data
        ) not in (2, 3):
            raise ValueError(
                "Argument `validation_data` must be a tuple (x_val, y_val) "
                "or (x_val, y_val, sample_weight_val). Received: "
                f"validation_data={type(validation_data).__name__}"
            )
        xv, yv, *rest = validation_data
        swv = rest[0] if rest else None
        return x, y, sample_weight, (np.asarray(xv), np.asarray(yv), swv)
    # Keras' own rule: the last fraction of the rows, before shuffling.
    at = int(math.floor(len(x) * (1.0 - validation_split)))
    if at < 1 or at >= len(x):
        raise ValueError(
            "Argument `validation_split` leaves no training or no validation "
            f"rows for {len(x)} examples. Received: "
            f"validation_split={validation_split!r}"
        )
    sw = None if sample_weight is None else sample_weight[:at]
    swv = None if sample_weight is None else sample_weight[at:]
    return x[:at], y[:at], sw, (x[at:], y[at:], swv)

