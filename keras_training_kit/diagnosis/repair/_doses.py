"""One bisection step of a graded remedy whose stronger dose overshot.

A learning rate raised by the LR range test may train well, and raised
ten times more diverge; the dose halfway between them on a log scale
(their geometric mean) is the one more try the repair loop gives it,
with attempts left once the run is healthy (or out of remedies).
"""

from __future__ import annotations

import math
from typing import Any

from keras_training_kit.diagnosis.repair._remedies import Recipe
from keras_training_kit.diagnosis.repair._surgery import Unapplicable

# The recipe field that each graded remedy's dose sets, and the name its
# parameters report it under.
_DOSES = {
    "lower_learning_rate": ("learning_rate", "learning_rate"),
    "raise_learning_rate": ("learning_rate", "learning_rate"),
    "larger_batch": ("batch_size", "batch_size"),
    "more_epochs": ("epochs", "epochs"),
    "clip_gradients": ("clipnorm", "global_clipnorm"),
}


def value(remedy: Any, recipe: Recipe) -> Any:
    """The dose of graded `remedy` in `recipe` (None: not a graded one)."""
    if remedy.name not in _DOSES:
        return None
    return getattr(recipe, _DOSES[remedy.name][0])


def between(
    remedy: Any, passed: Recipe, failed: Recipe
) -> tuple[Recipe, dict]:
    """`passed` with the dose of `remedy` halfway, on a log scale, between
    its value there and in `failed` (a stronger dose that did worse): one
    bisection step of a graded remedy that overshot."""
    if remedy.name not in _DOSES:
        raise Unapplicable(f"{remedy.name} has no dose to bisect")
    field, key = _DOSES[remedy.name]
    low, high = getattr(passed, field), getattr(failed, field)
    if not (low and high and low > 0 and high > 0):
        raise Unapplicable(f"no two doses of {remedy.name} to bisect")
    mid = math.sqrt(low * high)
    if isinstance(low, int):
        mid = int(round(mid))
    if mid in (low, high):
        raise Unapplicable(
            f"no dose of {remedy.name} between {low} and {high}"
        )
    out = {key: mid, "from": low,
           "how": f"log-midpoint of {low:.3g} (passed) and {high:.3g} "
                  "(did not pass)"}
    return passed.with_change(remedy.name, out, **{field: mid}), out
