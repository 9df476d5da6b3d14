"""ktk.data: split, hold out a once-only test set, cross-validate."""

from keras_training_kit.data.cross_validation import CVResult, cross_validate
from keras_training_kit.data.holdout import HoldoutReusedError, HoldoutSet
from keras_training_kit.data.split import train_val_test_split

__all__ = [
    "CVResult",
    "HoldoutReusedError",
    "HoldoutSet",
    "cross_validate",
    "train_val_test_split",
]
