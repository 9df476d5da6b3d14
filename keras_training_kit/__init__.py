"""keras_training_kit: the training know-how of "About Training" for Keras 3.

    import keras_training_kit as ktk

Optimizers (`ktk.optimizers`), learning-rate schedules (`ktk.schedules`),
regularizers (`ktk.regularizers`), layers (`ktk.layers`), callbacks
(`ktk.callbacks`), training diagnosis (`ktk.diagnosis`), data hygiene
(`ktk.data`) and hyperparameter search on keras-tuner (`ktk.tuning`).

Importing the kit imports Keras (so every kit object is registered and a
`.keras` file using them loads with `safe_mode=True`), but never
keras-tuner, matplotlib, optuna or torch: those load lazily where used.
With `KERAS_TRAINING_KIT_LAZY=1` (set by the `ktk` command) the
subpackages are imported on first use instead, so `ktk diagnose log.csv`
reads a CSV without importing TensorFlow.
"""

import importlib as _importlib
import os as _os

__version__ = "0.1.0"

_SUBPACKAGES = (
    "callbacks",
    "data",
    "diagnosis",
    "layers",
    "optimizers",
    "regularizers",
    "schedules",
    "tuning",
)


def __getattr__(name):
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name == "REGISTRY":
        from keras_training_kit._registry import REGISTRY

        return REGISTRY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if _os.environ.get("KERAS_TRAINING_KIT_LAZY") != "1":
    from keras_training_kit import (  # noqa: F401
        callbacks,
        data,
        diagnosis,
        layers,
        optimizers,
        regularizers,
        schedules,
        tuning,
    )
    from keras_training_kit._registry import REGISTRY  # noqa: F401
