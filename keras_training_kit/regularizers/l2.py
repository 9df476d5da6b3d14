"""L2 weight penalty with the course's one-half: `(λ/2)·‖w‖²`."""

from __future__ import annotations

import keras

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.regularizers._penalty import weight_penalty


@register("regularizer", example={"l2": 0.01})
class L2(keras.regularizers.Regularizer):
    """L2 regularization ("weight decay") in the course's convention.

    The penalty carries the course's factor one-half, so its gradient is
    exactly `λw` and one plain SGD step becomes the weight-decay update:

    ```
    penalty = (l2 / 2) * sum(w ** 2)
    d penalty / dw = l2 * w
    w <- (1 - learning_rate * l2) * w - learning_rate * dL/dw
    ```

    Note: `keras.regularizers.L2(l2)` computes `l2 * sum(w ** 2)` (no
    one-half), so `ktk.regularizers.L2(2 * c)` equals Keras' `L2(c)`.
    The course puts L2 on weights, usually not on biases.

    Args:
        l2: float >= 0, the regularization factor `λ`. Defaults to `0.01`.

    Example:

    >>> layer = keras.layers.Dense(3, kernel_regularizer=L2(0.01))
    >>> round(float(L2(0.1)(keras.ops.ones((2, 2)))), 6)   # 0.1 / 2 * 4
    0.2

    Reference:
        - [Krogh & Hertz, 1991](
          https://papers.nips.cc/paper/563-a-simple-weight-decay-can-improve-generalization)
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = v.check_non_negative("l2", l2)

    def __call__(self, x):
        return weight_penalty(x, l2=self.l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}
