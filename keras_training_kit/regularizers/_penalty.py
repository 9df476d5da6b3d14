"""The course's weight penalties as plain functions of a tensor.

One implementation shared by `L1`, `L2`, `L1L2` and `penalize`, so that
the three classes are configurations of the same formula, not copies.
"""

from __future__ import annotations

import keras
from keras import ops


def weight_penalty(x, l1: float = 0.0, l2: float = 0.0):
    """`l1 * sum(|x|) + (l2 / 2) * sum(x**2)`, in the dtype of `x`.

    Zero factors are skipped at trace time, so `L2` costs one reduction.
    """
    dtype = keras.backend.standardize_dtype(x.dtype)
    penalty = ops.convert_to_tensor(0.0, dtype=dtype)
    if l1:
        penalty = penalty + ops.cast(l1, dtype) * ops.sum(ops.absolute(x))
    if l2:
        penalty = penalty + ops.cast(0.5 * l2, dtype) * ops.sum(ops.square(x))
    return penalty
