"""Sum of the course's L1 and L2 penalties."""

from __future__ import annotations

import keras

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.regularizers._penalty import weight_penalty


@register("regularizer", example={"l1": 0.01, "l2": 0.01})
class L1L2(keras.regularizers.Regularizer):
    """L1 plus L2 regularization (elastic net), course convention.

    ```
    penalty = l1 * sum(|w|) + (l2 / 2) * sum(w ** 2)
    d penalty / dw = l1 * sign(w) + l2 * w
    ```

    Note the one-half on the L2 term, as in `ktk.regularizers.L2`;
    `keras.regularizers.L1L2` has none.

    Args:
        l1: float >= 0, the L1 factor. Defaults to `0.0`.
        l2: float >= 0, the L2 factor. Defaults to `0.0`.

    Example:

    >>> layer = keras.layers.Dense(3, kernel_regularizer=L1L2(1e-4, 1e-3))
    >>> x = keras.ops.ones((2, 2))
    >>> round(float(L1L2(1e-4, 1e-3)(x)), 6)   # 4e-4 + 1e-3 / 2 * 4
    0.0024

    Reference:
        - [Zou & Hastie, 2005](https://doi.org/10.1111/j.1467-9868.2005.00503.x)
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = v.check_non_negative("l1", l1)
        self.l2 = v.check_non_negative("l2", l2)

    def __call__(self, x):
        return weight_penalty(x, l1=self.l1, l2=self.l2)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}
