"""A test set that can be evaluated only once."""

from __future__ import annotations

from typing import Any

from keras_training_kit.data import _arrays

COURSE_RULE = "only run on the test set once, at the very end"


class HoldoutReusedError(RuntimeError):
    """Raised when a `HoldoutSet` is evaluated a second time."""


class HoldoutSet:
    """A test set that enforces the course's rule: use it once.

    Choosing anything (hyperparameters, epochs, the model) by looking at
    test results turns the test set into a second validation set and its
    score into an optimistic estimate. `evaluate` therefore works once; a
    second call raises `HoldoutReusedError`. The first result stays
    readable as `.result`.

    Args:
        x: test inputs (array, list, pandas object or dict of arrays).
        y: test targets.

    Example:

    >>> import numpy as np, keras
    >>> import keras_training_kit as ktk
    >>> x = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    >>> y = x.sum(axis=1)
    >>> _, (xv, yv), (xs, ys) = ktk.data.train_val_test_split(x, y, seed=0)
    >>> test = ktk.data.HoldoutSet(xs, ys)
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> # ... choose everything on (xv, yv), then, once, at the very end:
    >>> sorted(test.evaluate(model))
    ['loss']
    >>> test.used
    True
    """

    def __init__(self, x: Any, y: Any) -> None:
        _arrays.check_xy(x, y)
        self._x = x
        self._y = y
        self._result: dict | None = None

    @property
    def used(self) -> bool:
        """Whether `evaluate` has already been called."""
        return self._result is not None

    @property
    def result(self) -> dict | None:
        """The metrics dict of the one evaluation (None before it)."""
        return None if self._result is None else dict(self._result)

    def evaluate(self, model: Any, **kwargs: Any) -> dict:
        """Evaluates `model` on the test set, once.

        Args:
            model: a compiled Keras model.
            **kwargs: passed to `model.evaluate` (`batch_size`, `verbose`...).

        Returns:
            A dict of metric names to values.

        Raises:
            HoldoutReusedError: on the second call.
        """
        if self._result is not None:
            raise HoldoutReusedError(
                f"This HoldoutSet was already evaluated: {COURSE_RULE}. "
                f"Its result is still readable as `.result`: {self._result}"
            )
        kwargs.setdefault("verbose", 0)
        kwargs["return_dict"] = True
        result = model.evaluate(self._x, self._y, **kwargs)
        self._result = {k: float(val) for k, val in result.items()}
        return dict(self._result)
