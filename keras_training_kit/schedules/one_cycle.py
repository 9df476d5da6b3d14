"""Smith's one-cycle learning-rate policy, as PyTorch's `OneCycleLR`."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register


@register(
    "schedule", example={"max_learning_rate": 0.05, "total_steps": 20}
)
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle learning-rate policy (Smith & Topin, 2018).

    The rate warms up from `max_learning_rate / div_factor` to
    `max_learning_rate` during the first `pct_start` of the run, then
    anneals to `max_learning_rate / (div_factor * final_div_factor)` at
    step `total_steps - 1`. It follows the curve of
    `torch.optim.lr_scheduler.OneCycleLR` step by step (the learning rate
    only; Keras optimizers keep their momentum constant).

    ```python
    initial = max_learning_rate / div_factor
    minimum = initial / final_div_factor
    # phases (end_step, start_lr, end_lr), t = step:
    #   two phases:   (pct_start * total_steps - 1, initial, max_lr)
    #                 (total_steps - 1, max_lr, minimum)
    #   three_phase:  (pct_start * total_steps - 1, initial, max_lr)
    #                 (2 * pct_start * total_steps - 2, max_lr, initial)
    #                 (total_steps - 1, initial, minimum)
    # in the first phase with t <= end_step (else the last one), from its
    # start_step (the previous end_step, or 0):
    pct = (t - start_step) / (end_step - start_step)
    # anneal_strategy="cos":
    learning_rate = end_lr + (start_lr - end_lr) * (1 + cos(pi * pct)) / 2
    # anneal_strategy="linear":
    learning_rate = start_lr + (end_lr - start_lr) * pct
    ```

    `step` is the optimizer's iteration count (0 for the first update, as
    PyTorch's scheduler count). From step `total_steps - 1` on, the rate
    stays at its final value `minimum` (PyTorch raises an error after
    `total_steps` instead).

    Args:
        max_learning_rate: the peak rate, a number >= 0.
        total_steps: the length of the cycle in updates (usually
            `epochs * steps_per_epoch`), a positive integer.
        pct_start: the fraction of the cycle spent increasing the rate, in
            [0, 1] (in [0, 0.5] with `three_phase=True`). Defaults to `0.3`.
        div_factor: the initial rate is `max_learning_rate / div_factor`, a
            number > 0. Defaults to `25.0`.
        final_div_factor: the final rate is the initial rate divided by
            `final_div_factor`, a number > 0. Defaults to `1e4`.
        anneal_strategy: `"cos"` (cosine annealing) or `"linear"`. Defaults
            to `"cos"`.
        three_phase: when `True`, the rate goes back down to the initial
            rate symmetrically, and only then anneals to the minimum (the
            schedule of fast.ai's original). Defaults to `False`.

    Example:

    >>> import keras, keras_training_kit as ktk
    >>> steps_per_epoch, epochs = 50, 10
    >>> schedule = ktk.schedules.OneCycle(
    ...     max_learning_rate=0.1, total_steps=epochs * steps_per_epoch
    ... )
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=ktk.optimizers.Momentum(schedule), loss="mse")
    >>> round(float(schedule(149)), 6)   # the peak, at pct_start of the run
    0.1

    Reference:
        - [Smith & Topin, 2018](https://arxiv.org/abs/1708.07120)
        - [Smith, 2018](https://arxiv.org/abs/1803.09820)
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
    ) -> None:
        super().__init__()
        v.check_non_negative("max_learning_rate", max_learning_rate)
        v.check_positive_int("total_steps", total_steps)
        v.check_range(
            "pct_start", pct_start, 0.0, 0.5 if three_phase else 1.0
        )
        v.check_positive("div_factor", div_factor)
        v.check_positive("final_div_factor", final_div_factor)
        v.check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        v.check_choice("three_phase", three_phase, (True, False))
        self.max_learning_rate = max_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)

    def _phases(self) -> list[tuple[float, float, float]]:
        """(end_step, start_lr, end_lr) per phase, in float64 like PyTorch."""
        peak = float(self.max_learning_rate)
        initial = peak / self.div_factor
        minimum = initial / self.final_div_factor
        warm_end = float(self.pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        if self.three_phase:
            down_end = float(2 * self.pct_start * self.total_steps) - 2
            return [
                (warm_end, initial, peak),
                (down_end, peak, initial),
                (last, initial, minimum),
            ]
        return [(warm_end, initial, peak), (last, peak, minimum)]

    def __call__(self, step: Any) -> Any:
        t = ops.cast(step, "float32")
        t = ops.clip(t, 0.0, float(self.total_steps - 1))
        rates = []
        start_step = 0.0
        for end_step, start_lr, end_lr in self._phases():
            length = end_step - start_step
            if length == 0:
                # A phase of no length (PyTorch divides by zero): its end.
                done, left = ops.ones_like(t), ops.zeros_like(t)
            else:
                # Both fractions from exact differences of whole steps, so
                # neither loses digits near its end of the phase.
                done = (t - start_step) / length
                left = (end_step - t) / length
            if self.anneal_strategy == "cos":
                # (1 + cos(pi p)) / 2 = sin²(pi (1-p) / 2) and
                # (1 - cos(pi p)) / 2 = sin²(pi p / 2): a convex blend of
                # the two rates, free of cancellation in float32.
                w_start = ops.square(ops.sin(left * (math.pi / 2)))
                w_end = ops.square(ops.sin(done * (math.pi / 2)))
            else:
                w_start, w_end = left, done
            rates.append(w_start * start_lr + w_end * end_lr)
            start_step = end_step
        # The first phase whose end_step is not behind t (else the last).
        rate = rates[-1]
        for (end_step, _, _), phase_rate in zip(
            reversed(self._phases()[:-1]), reversed(rates[:-1])
        ):
            rate = ops.where(t <= end_step, phase_rate, rate)
        return rate

    def get_config(self) -> dict:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
        }
