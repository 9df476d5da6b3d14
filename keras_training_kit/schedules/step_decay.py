"""Step decay: multiply the learning rate by `factor` every `every` steps."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register


@register(
    "schedule", example={"initial_learning_rate": 0.1, "factor": 0.5}
)
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Step decay: "reduce the learning rate by some factor every few epochs".

    The course's rule of thumb as a schedule: the rate stays constant for
    `every` updates, then drops by `factor`.

    ```python
    learning_rate = initial_learning_rate * factor ** floor(step / every)
    ```

    `step` is the optimizer's iteration count (0 for the first update), so
    `every` counts updates: pass `every=k * steps_per_epoch` to decay every
    `k` epochs.

    Args:
        initial_learning_rate: `η`, the rate of the first `every` updates, a
            number >= 0.
        factor: the multiplier applied every `every` updates, a number > 0
            (usually below 1, e.g. `0.1` or `0.5`). Defaults to `0.5`.
        every: the number of updates between two drops, a positive integer.
            Defaults to `10`.

    Example:

    >>> import keras_training_kit as ktk
    >>> steps_per_epoch = 50
    >>> schedule = ktk.schedules.StepDecay(
    ...     0.1, factor=0.1, every=10 * steps_per_epoch
    ... )
    >>> optimizer = ktk.optimizers.Momentum(learning_rate=schedule)
    >>> [round(float(schedule(t)), 6) for t in (0, 499, 500, 1000)]
    [0.1, 0.1, 0.01, 0.001]

    Reference:
        - [Goodfellow et al., Deep Learning, 2016, §8.3.1](
          https://www.deeplearningbook.org/contents/optimization.html).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        factor: float = 0.5,
        every: int = 10,
    ) -> None:
        super().__init__()
        v.check_non_negative("initial_learning_rate", initial_learning_rate)
        v.check_positive("factor", factor)
        v.check_positive_int("every", every)
        self.initial_learning_rate = initial_learning_rate
        self.factor = factor
        self.every = every
        # factor ** k in float32 loses k half-ulps to the rounding of
        # `factor` itself: put them back with exp(k * log(factor / f32)).
        self._factor32, self._log_correction = _split(factor)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        every = float(self.every)
        # Exact floor(step / every) for integral steps: the remainder is
        # exact, and so is the division of a multiple of `every`.
        drops = (step - ops.mod(step, every)) / every
        scale = ops.power(self._factor32, drops) * ops.exp(
            drops * self._log_correction
        )
        return ops.cast(self.initial_learning_rate, "float32") * scale

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "factor": self.factor,
            "every": self.every,
        }


def _split(x: float) -> tuple[float, float]:
    """`x` rounded to float32, and the log of what the rounding cut off."""
    x32 = float(np.float32(x))
    return x32, math.log(x / x32)
