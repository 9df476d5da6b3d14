"""Plain (mini-batch) stochastic gradient descent, the course's first rule."""

from __future__ import annotations

from keras_training_kit._registry import register
from keras_training_kit.optimizers._base import KitOptimizer, with_base_args


@register("optimizer", example={"learning_rate": 0.1})
@with_base_args
class SGD(KitOptimizer):
    """Gradient descent on the mini-batch gradient.

    The course's rule `θ ← θ − η∇L(θ)`, with `∇L` the mean gradient over a
    mini-batch of `b` examples (`b = 1` is stochastic gradient descent):

    ```python
    w = w - learning_rate * g
    ```

    Same math as `keras.optimizers.SGD(momentum=0.0)`.

    Args:
        learning_rate: `η`: a float >= 0, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            taking no arguments. Defaults to `0.01`.
        {{base_args}}

    Example:

    >>> import keras, keras_training_kit as ktk
    >>> opt = ktk.optimizers.SGD(learning_rate=0.1)
    >>> w = keras.Variable([1.0, 2.0])
    >>> opt.apply([keras.ops.convert_to_tensor([1.0, -1.0])], [w])
    >>> [round(float(x), 4) for x in w.numpy()]
    [0.9, 2.1]

    Reference:
        - Robbins & Monro, 1951, "A Stochastic Approximation Method".
    """

    def __init__(self, learning_rate=0.01, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)

    def _rule(self, gradient, variable, slots, learning_rate, step):
        return learning_rate * gradient, ()

    def get_config(self):
        return super().get_config()

