"""Train / validation / test split: choose on validation, test once."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_training_kit import _validation as v
from keras_training_kit.data import _arrays


def _split_index(
    index: np.ndarray,
    n_out: int,
    labels: np.ndarray | None,
    rng: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """Splits `index` into (rest, out) with `len(out) == n_out`."""
    if n_out == 0:
        return index, index[:0]
    if labels is None:
        perm = rng.permutation(len(index))
        return index[perm[n_out:]], index[perm[:n_out]]
    from sklearn.model_selection import train_test_split

    rest, out = train_test_split(
        index,
        test_size=n_out,
        stratify=labels[index],
        random_state=rng.randint(2**31 - 1),
    )
    return np.asarray(rest), np.asarray(out)


def train_val_test_split(
    x: Any,
    y: Any,
    val_size: float = 0.15,
    test_size: float = 0.15,
    stratify: bool = False,
    seed: int | None = None,
) -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]:
    """Splits data into disjoint training, validation and test sets.

    The course's rule: choose hyperparameters on the validation set, never
    on the training data or on the test set, and "only run on the test set
    once, at the very end" (see `HoldoutSet`). The split sizes are
    `round(val_size * n)` and `round(test_size * n)` samples; the training
    set gets the rest.

    Args:
        x: inputs: a NumPy array, a list (one element per sample), a pandas
            DataFrame/Series, or a dict of those for multi-input models.
        y: targets, same types as `x`.
        val_size: fraction of samples for validation, in [0, 1).
            Defaults to `0.15`.
        test_size: fraction of samples for the test set, in [0, 1).
            Defaults to `0.15`. `val_size + test_size` must be < 1.
        stratify: keep the class proportions of `y` (integer labels or
            one-hot rows) in every split. Defaults to `False`.
        seed: seed of the shuffle. Defaults to `None` (random).

    Returns:
        `((x_train, y_train), (x_val, y_val), (x_test, y_test))`, each part
        of the same type as the input.

    Example:

    >>> import numpy as np
    >>> import keras_training_kit as ktk
    >>> x, y = np.arange(200).reshape(100, 2), np.arange(100) % 2
    >>> (xt, yt), (xv, yv), (xs, ys) = ktk.data.train_val_test_split(
    ...     x, y, val_size=0.15, test_size=0.15, stratify=True, seed=0)
    >>> len(xt), len(xv), len(xs)
    (70, 15, 15)
    >>> float(ys.mean())  # stratified: the classes keep their proportions
    0.4666666666666667
    """
    v.check_unit_interval("val_size", val_size)
    v.check_unit_interval("test_size", test_size)
    if val_size + test_size >= 1:
        raise ValueError(
            "Arguments `val_size + test_size` must be < 1, leaving samples "
            f"to train on. Received: val_size={val_size}, "
            f"test_size={test_size}"
        )
    n = _arrays.check_xy(x, y)
    n_test = int(round(test_size * n))
    n_val = int(round(val_size * n))
    if n - n_test - n_val < 1:
        raise ValueError(
            f"The split leaves no training sample: {n} samples, "
            f"val_size={val_size}, test_size={test_size}"
        )
    labels = _arrays.labels_for_stratify(y) if stratify else None
    rng = np.random.RandomState(seed)
    index = np.arange(n)
    rest, test = _split_index(index, n_test, labels, rng)
    train, val = _split_index(rest, n_val, labels, rng)
    # Sorted indices keep the original order inside each split (pandas).
    parts = [np.sort(train), np.sort(val), np.sort(test)]
    return tuple(
        (_arrays.take(x, part), _arrays.take(y, part)) for part in parts
    )
