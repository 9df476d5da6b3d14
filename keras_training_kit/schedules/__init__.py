"""ktk.schedules: learning-rate schedules of the course and of Smith.

`InverseSqrtDecay` (the course's 1/t decay), `StepDecay` (drop by a factor
every few epochs), `OneCycle` and `CyclicalLearningRate` (Smith's policies,
which Keras 3 lost with TensorFlow Addons). All are serializable
`keras.optimizers.schedules.LearningRateSchedule`s.
"""

from keras_training_kit.schedules.cyclical_learning_rate import (
    CyclicalLearningRate,
)
from keras_training_kit.schedules.inverse_sqrt_decay import InverseSqrtDecay
from keras_training_kit.schedules.one_cycle import OneCycle
from keras_training_kit.schedules.step_decay import StepDecay

__all__ = [
    "CyclicalLearningRate",
    "InverseSqrtDecay",
    "OneCycle",
    "StepDecay",
]
