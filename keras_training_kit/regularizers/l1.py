"""L1 weight penalty: `λ·‖w‖₁`."""

from __future__ import annotations

import keras

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.regularizers._penalty import weight_penalty


@register("regularizer", example={"l1": 0.01})
class L1(keras.regularizers.Regularizer):
    """L1 regularization in the course's convention.

    ```
    penalty = l1 * sum(|w|)
    d penalty / dw = l1 * sign(w)
    w <- w - learning_rate * l1 * sign(w) - learning_rate * dL/dw
    ```

    The constant-size pull towards zero (unlike L2's pull proportional to
    `w`) is what makes L1 solutions sparse. With plain (sub)gradient
    descent weights oscillate around zero with amplitude about
    `learning_rate * l1` rather than landing exactly on it.

    Args:
        l1: float >= 0, the regularization factor `λ`. Defaults to `0.01`.

    Example:

    >>> layer = keras.layers.Dense(3, kernel_regularizer=L1(0.01))
    >>> round(float(L1(0.01)(keras.ops.ones((2, 2)))), 6)   # 0.01 * 4
    0.04

    Reference:
        - [Tibshirani, 1996](https://doi.org/10.1111/j.2517-6161.1996.tb02080.x)
    """

    def __init__(self, l1: float = 0.01):
        self.l1 = v.check_non_negative("l1", l1)

    def __call__(self, x):
        return weight_penalty(x, l1=self.l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}
