"""keras_training_kit: the training know-how of "About Training" for Keras 3.

    import keras_training_kit as ktk

Optimizers (`ktk.optimizers`), learning-rate schedules (`ktk.schedules`),
regularizers (`ktk.regularizers`), layers (`ktk.layers`), callbacks
(`ktk.callbacks`), training diagnosis (`ktk.diagnosis`), data hygiene
(`ktk.data`) and hyperparameter search on keras-tuner (`ktk.tuning`).

Importing the kit imports Keras, but never keras-tuner, matplotlib, optuna or
torch: those load lazily where used.
"""

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

__version__ = "0.1.0"
