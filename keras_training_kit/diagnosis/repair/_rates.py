"""The learning rate a repair recipe trains with: a number, or the user's
schedule scaled as a whole.

A `lower_learning_rate` or `raise_learning_rate` remedy on an optimizer
built with a `keras.optimizers.schedules.LearningRateSchedule` multiplies
the schedule's rate values (`initial_learning_rate`, `values`,
`warmup_target`, ...), so the user's decay, warmup or cycle keeps its
shape and the saved model carries the user's schedule class. The recipe
holds a number either way: for a schedule, its *reference rate*, the
largest value it takes at 14 steps from 0 to 10,000 (about a one-cycle's
peak, an exponential decay's initial rate). There is no LR range test for
a schedule (it has no one rate): the remedy's factor (/ 10, x 10) scales
it. A schedule whose curve does not follow its scaled values at those
steps is reported "scale the schedule by hand".
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

# Rate values in the configs of Keras' and the kit's schedules: each of
# those schedules is linear in them (steps, factors and shapes are not
# touched).
_RATE_KEYS = ("initial_learning_rate", "maximal_learning_rate",
              "max_learning_rate", "end_learning_rate", "warmup_target",
              "values")
# The steps at which a schedule is read (its reference rate and the check
# that scaling its values scales its curve).
_STEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class ScheduleError(Exception):
    """A schedule that cannot be scaled from its config."""


def schedule_config(optimizer_config: dict) -> dict | None:
    """The serialized schedule of a serialized optimizer, or None when its
    learning rate is a number."""
    lr = optimizer_config["config"].get("learning_rate")
    return lr if isinstance(lr, dict) else None


def reference_rate(schedule: dict) -> float:
    """The largest rate of a serialized schedule over its first 10,000
    steps."""
    return float(np.max(_read(schedule)))


def scaled(schedule: dict, rate: float) -> dict:
    """The serialized schedule whose reference rate is `rate`: every rate
    value multiplied by `rate / reference_rate(schedule)`, checked step by
    step (`ScheduleError` when the curve does not follow)."""
    before = _read(schedule)
    factor = float(rate) / float(np.max(before))
    inner = dict(schedule["config"])
    keys = [k for k in _RATE_KEYS if inner.get(k) is not None]
    if not keys:
        raise ScheduleError(
            f"no rate value among {', '.join(_RATE_KEYS)} in the config of "
            f"{schedule.get('class_name')}"
        )
    for key in keys:
        value = inner[key]
        inner[key] = ([float(v) * factor for v in value]
                      if isinstance(value, (list, tuple))
                      else float(value) * factor)
    out = {**schedule, "config": inner}
    after = _read(out)
    if not np.allclose(after, factor * before, rtol=1e-4, atol=1e-12):
        raise ScheduleError(
            f"{schedule.get('class_name')} does not scale with its rate "
            "values"
        )
    return out


def _read(schedule: dict) -> np.ndarray:
    try:
        fn = keras.optimizers.schedules.deserialize(schedule)
        values = np.array([
            float(keras.ops.convert_to_numpy(fn(step))) for step in _STEPS
        ])
    except Exception as e:  # noqa: BLE001 (a user schedule: say why)
        raise ScheduleError(
            f"cannot rebuild {schedule.get('class_name')} from its config "
            f"({type(e).__name__})"
        ) from e
    if not (np.all(np.isfinite(values)) and np.max(values) > 0):
        raise ScheduleError(
            f"{schedule.get('class_name')} has no positive finite rate"
        )
    return values


def current(optimizer_config: dict, recipe: Any) -> float:
    """The learning rate `recipe` trains with: its own, else the
    optimizer's number or its schedule's reference rate."""
    if recipe.learning_rate is not None:
        return float(recipe.learning_rate)
    schedule = schedule_config(optimizer_config)
    if schedule is not None:
        return reference_rate(schedule)
    lr = optimizer_config["config"].get("learning_rate")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr):
        raise ScheduleError(f"the learning rate {lr!r} is not a number")
    return float(lr)
