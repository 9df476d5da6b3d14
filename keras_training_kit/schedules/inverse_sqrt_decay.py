"""The course's 1/t decay: `η_t = η / √(t/decay_steps + 1)`."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register


@register("schedule", example={"initial_learning_rate": 0.1})
class InverseSqrtDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Inverse square-root ("1/t") learning-rate decay.

    The course's decay for mini-batch gradient descent and Adagrad: the
    learning rate shrinks with the square root of the step, fast at first
    and slowly later. With `decay_steps=1` it is exactly the slide's
    `ηᵗ = η/√(t+1)`; a larger `decay_steps` stretches the time axis.

    ```python
    learning_rate = initial_learning_rate / sqrt(step / decay_steps + 1)
    ```

    `step` is the optimizer's iteration count, 0 for the first update.

    Args:
        initial_learning_rate: `η`, the rate of the first update, a number
            >= 0.
        decay_steps: the time scale of the decay, a positive integer: the
            rate is `η/√2` after `decay_steps` updates. Defaults to `1`.

    Example:

    >>> import keras_training_kit as ktk
    >>> schedule = ktk.schedules.InverseSqrtDecay(0.1, decay_steps=100)
    >>> optimizer = ktk.optimizers.SGD(learning_rate=schedule)
    >>> round(float(schedule(300)), 6)   # 0.1 / sqrt(300 / 100 + 1)
    0.05

    Reference:
        - [Duchi et al., 2011](https://jmlr.org/papers/v12/duchi11a.html)
          (the `η/√(t+1)` rate behind Adagrad).
    """

    def __init__(
        self, initial_learning_rate: float, decay_steps: int = 1
    ) -> None:
        super().__init__()
        v.check_non_negative("initial_learning_rate", initial_learning_rate)
        v.check_positive_int("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        scale = ops.sqrt(step / float(self.decay_steps) + 1.0)
        return ops.cast(self.initial_learning_rate, "float32") / scale

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
        }
