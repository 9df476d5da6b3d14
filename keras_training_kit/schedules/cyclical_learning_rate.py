"""Smith's cyclical learning rates: triangular, triangular2, exp_range."""

from __future__ import annotations

import math
from typing import Any, Callable

import keras
import numpy as np
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register

_MODES = ("triangular", "triangular2", "exp_range")


@register(
    "schedule",
    example={
        "initial_learning_rate": 0.01,
        "maximal_learning_rate": 0.1,
        "step_size": 4,
    },
)
class CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical learning rate (Smith, 2017).

    The rate moves linearly from `initial_learning_rate` up to
    `maximal_learning_rate` in `step_size` updates and back down in as
    many, over and over; the amplitude of each cycle is scaled by the
    `mode`'s policy. The same formulas as TensorFlow Addons'
    `CyclicalLearningRate` (gone with Keras 3) and as
    `torch.optim.lr_scheduler.CyclicLR` with `step_size_up=step_size`.

    ```python
    cycle = floor(1 + step / (2 * step_size))          # 1, 2, ...
    x = abs(step / step_size - 2 * cycle + 1)          # 1 -> 0 -> 1
    learning_rate = initial_learning_rate + (
        maximal_learning_rate - initial_learning_rate
    ) * max(0, 1 - x) * scale
    # mode="triangular":  scale = 1
    # mode="triangular2": scale = 1 / 2 ** (cycle - 1)  (halved each cycle)
    # mode="exp_range":   scale = gamma ** step
    # scale_fn given:     scale = scale_fn(cycle if scale_mode == "cycle"
    #                                      else step)
    ```

    `step` is the optimizer's iteration count, 0 for the first update (the
    rate of PyTorch's scheduler after as many `scheduler.step()` calls).

    Args:
        initial_learning_rate: the lower bound of the cycle, a number >= 0.
        maximal_learning_rate: the upper bound of the cycle, a number >= 0
            (reached only if the scale is 1).
        step_size: half a cycle, in updates, a number > 0 (Smith suggests
            2 to 10 times the steps per epoch).
        mode: `"triangular"`, `"triangular2"` or `"exp_range"`. Defaults
            to `"triangular"`.
        gamma: the per-step factor of `"exp_range"`, a number > 0.
            Defaults to `1.0`.
        scale_fn: an optional custom policy, a function of one float
            tensor (the cycle number, or the step) returning the scale,
            written with `keras.ops`. It replaces `mode`'s policy. To save
            the schedule, register the function with
            `keras.saving.register_keras_serializable`. Defaults to `None`.
        scale_mode: what `scale_fn` receives: `"cycle"` or `"iterations"`
            (the step). Defaults to `"cycle"`.

    Example:

    >>> import keras_training_kit as ktk
    >>> steps_per_epoch = 50
    >>> schedule = ktk.schedules.CyclicalLearningRate(
    ...     initial_learning_rate=1e-4,
    ...     maximal_learning_rate=1e-2,
    ...     step_size=4 * steps_per_epoch,
    ...     mode="triangular2",
    ... )
    >>> optimizer = ktk.optimizers.SGD(learning_rate=schedule)
    >>> [round(float(schedule(t)), 6) for t in (0, 200, 400, 600)]
    [0.0001, 0.01, 0.0001, 0.00505]

    Reference:
        - [Smith, 2017](https://arxiv.org/abs/1506.01186)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        maximal_learning_rate: float,
        step_size: float,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[Any], Any] | None = None,
        scale_mode: str = "cycle",
    ) -> None:
        super().__init__()
        v.check_non_negative("initial_learning_rate", initial_learning_rate)
        v.check_non_negative("maximal_learning_rate", maximal_learning_rate)
        v.check_positive("step_size", step_size)
        v.check_choice("mode", mode, _MODES)
        v.check_positive("gamma", gamma)
        if scale_fn is not None and not callable(scale_fn):
            raise ValueError(
                "Argument `scale_fn` must be a callable or None. "
                f"Received: scale_fn={scale_fn!r}"
            )
        v.check_choice("scale_mode", scale_mode, ("cycle", "iterations"))
        self.initial_learning_rate = initial_learning_rate
        self.maximal_learning_rate = maximal_learning_rate
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma
        self.scale_fn = scale_fn
        self.scale_mode = scale_mode
        # gamma ** step in float32 loses step half-ulps to the rounding of
        # gamma itself: put them back with exp(step * log(gamma / f32)).
        self._gamma32 = float(np.float32(gamma))
        self._log_correction = math.log(gamma / self._gamma32)

    def _scale(self, cycle: Any, step: Any) -> Any:
        if self.scale_fn is not None:
            arg = cycle if self.scale_mode == "cycle" else step
            return ops.cast(self.scale_fn(arg), "float32")
        if self.mode == "triangular2":
            return ops.power(2.0, 1.0 - cycle)
        if self.mode == "exp_range":
            return ops.power(self._gamma32, step) * ops.exp(
                step * self._log_correction
            )
        return ops.ones_like(step)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        half = float(self.step_size)
        # Position in the cycle, exact for whole steps (the remainder is
        # exact): the triangle keeps full precision near its bottom.
        position = ops.mod(step, 2.0 * half)
        cycle = (step - position) / (2.0 * half) + 1.0
        triangle = ops.maximum(half - ops.abs(position - half), 0.0) / half
        low = float(self.initial_learning_rate)
        height = float(self.maximal_learning_rate) - low
        return low + height * triangle * self._scale(cycle, step)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
            "scale_fn": (
                None
                if self.scale_fn is None
                else keras.saving.serialize_keras_object(self.scale_fn)
            ),
            "scale_mode": self.scale_mode,
        }

    @classmethod
    def from_config(cls, config: dict) -> "CyclicalLearningRate":
        config = dict(config)
        if config.get("scale_fn") is not None:
            config["scale_fn"] = keras.saving.deserialize_keras_object(
                config["scale_fn"]
            )
        return cls(**config)
