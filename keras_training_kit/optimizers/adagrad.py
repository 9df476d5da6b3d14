"""Adagrad: per-parameter learning rates from the sum of squared gradients."""

from __future__ import annotations

import keras
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.optimizers._base import KitOptimizer, with_base_args


@register("optimizer", example={"learning_rate": 0.1})
@with_base_args
class Adagrad(KitOptimizer):
    """Adagrad (Duchi et al. 2011), in the course's simplified form.

    The slide's rule `wᵗ⁺¹ = wᵗ − (ηᵗ/σᵗ) gᵗ`, with the 1/t decay
    `ηᵗ = η/√(t+1)` and the root mean square of past gradients
    `σᵗ = √((1/(t+1)) Σᵢ≤ₜ (gⁱ)²)`, simplifies (the `√(t+1)` cancel) to

    ```python
    accumulator = accumulator + g ** 2
    w = w - learning_rate * g / sqrt(accumulator + epsilon)
    ```

    so each parameter gets its own effective rate, large where gradients
    have been small. Same math as `keras.optimizers.Adagrad`; the slot
    stores `accumulator + epsilon` (initialized to
    `initial_accumulator_value + epsilon`), which gives the same numbers
    with one addition less per step.

    Args:
        learning_rate: `η`: a float >= 0, a `LearningRateSchedule`, or a
            callable. Defaults to `0.01`.
        epsilon: `ε` >= 0, added inside the square root for numerical
            stability. Defaults to `1e-7`.
        initial_accumulator_value: starting value (>= 0) of the sum of
            squared gradients. Defaults to `0.0`.
        {{base_args}}

    Example:

    >>> import keras, keras_training_kit as ktk
    >>> opt = ktk.optimizers.Adagrad(learning_rate=0.1, epsilon=0.0)
    >>> w = keras.Variable([1.0])
    >>> opt.apply([keras.ops.convert_to_tensor([2.0])], [w])
    >>> round(float(w.numpy()[0]), 4)   # 1 - 0.1 * 2 / sqrt(4)
    0.9

    Reference:
        - [Duchi et al., 2011](
          https://jmlr.org/papers/v12/duchi11a.html).
    """

    def __init__(
        self,
        learning_rate=0.01,
        epsilon=1e-7,
        initial_accumulator_value=0.0,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.epsilon = v.check_non_negative("epsilon", epsilon)
        self.initial_accumulator_value = v.check_non_negative(
            "initial_accumulator_value", initial_accumulator_value
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        start = self.initial_accumulator_value + self.epsilon
        self._add_slots(
            var_list, ["accumulator"], [keras.initializers.Constant(start)]
        )

    def _slot_increments(self, gradient, slots, learning_rate, step):
        return (ops.square(gradient),)

    def _step(self, gradient, variable, slots, learning_rate, step):
        (accumulator,) = slots  # holds Σg² + initial value + ε
        start = self.initial_accumulator_value + self.epsilon
        accumulator = self._nonzero(accumulator, start)
        return learning_rate * gradient * ops.rsqrt(accumulator)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value,
            }
        )
        return config

