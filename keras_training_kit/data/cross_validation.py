"""k-fold cross-validation with a fresh model per fold."""

from __future__ import annotations

import dataclasses
import gc
from typing import Any, Callable

import keras
import numpy as np

from keras_training_kit import _validation as v
from keras_training_kit.data import _arrays


@dataclasses.dataclass
class CVResult:
    """The outcome of `cross_validate`.

    Attributes:
        scores: one dict per fold of the final validation metrics, keyed
            by the names Keras logs (`"val_loss"`, `"val_accuracy"`, ...).
        mean: metric name -> mean over the folds.
        std: metric name -> standard deviation over the folds (ddof=0).
        histories: one `keras.callbacks.History` per fold (its `.model` is
            dropped to free memory).
        splits: one `(train_index, val_index)` pair of row indices per fold.
    """

    scores: list[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]
    histories: list[Any]
    splits: list[tuple[np.ndarray, np.ndarray]]

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{k}={self.mean[k]:.4g}±{self.std[k]:.2g}" for k in self.mean
        )
        return f"CVResult(folds={len(self.scores)}, {parts})"


def check_compiled(model: Any, where: str = "build_model") -> None:
    """Raises ValueError unless `model` is a compiled Keras model."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`{where}` must return a Keras model. Received: "
            f"{type(model).__name__}"
        )
    if not getattr(model, "compiled", False):
        raise ValueError(
            f"`{where}` must return a compiled model: call "
            "`model.compile(optimizer=..., loss=...)` before returning it."
        )


def summarize(scores: list[dict[str, float]]) -> tuple[dict, dict]:
    """Mean and standard deviation of each metric over folds."""
    names = [k for k in scores[0] if all(k in s for s in scores)]
    mean = {k: float(np.mean([s[k] for s in scores])) for k in names}
    std = {k: float(np.std([s[k] for s in scores])) for k in names}
    return mean, std


def cross_validate(
    build_model: Callable[[], Any],
    x: Any,
    y: Any,
    folds: int = 5,
    stratify: bool = False,
    seed: int | None = None,
    verbose: int = 1,
    **fit_kwargs: Any,
) -> CVResult:
    """k-fold cross-validation: each fold serves once as validation set.

    The data is cut into `folds` parts; for each part a fresh model from
    `build_model()` trains on the other `folds - 1` parts and is validated
    on it, so every sample is validated exactly once. The course: "k-fold
    cross-validation (try each fold as validation, average) is especially
    useful for small datasets". The Keras session is cleared between folds,
    so no weights or optimizer state leak from one fold to the next.

    Args:
        build_model: a function of no argument returning a new compiled
            Keras model.
        x: inputs (array, list, pandas object or dict of arrays).
        y: targets.
        folds: number of folds, an integer >= 2. Defaults to `5`.
        stratify: keep class proportions of `y` in every fold.
            Defaults to `False`.
        seed: seed of the shuffle before cutting folds. Defaults to `None`.
        verbose: `1` shows a progress bar over folds, `0` is silent.
            Defaults to `1`.
        **fit_kwargs: passed to `model.fit` (`epochs`, `batch_size`,
            `callbacks`...). `verbose` defaults to 0 inside each fold.

    Returns:
        A `CVResult`.

    Example:

    >>> import numpy as np, keras
    >>> import keras_training_kit as ktk
    >>> x = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> def build_model():
    ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    ...     model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
    ...         from_logits=True), metrics=["accuracy"])
    ...     return model
    >>> cv = ktk.data.cross_validate(build_model, x, y, folds=3, epochs=2,
    ...                              seed=0, verbose=0)
    >>> len(cv.scores), sorted(cv.mean)
    (3, ['val_accuracy', 'val_loss'])
    """
    folds = v.check_positive_int("folds", folds, minimum=2)
    v.check_choice("verbose", verbose, (0, 1, 2))
    if not callable(build_model):
        raise ValueError(
            "Argument `build_model` must be callable. Received: "
            f"build_model={build_model!r}"
        )
    for key in ("validation_data", "validation_split", "x", "y"):
        if key in fit_kwargs:
            raise ValueError(
                f"`cross_validate` makes the validation folds itself; do "
                f"not pass `{key}`."
            )
    n = _arrays.check_xy(x, y)
    labels = _arrays.labels_for_stratify(y) if stratify else None
    splits = _arrays.kfold(n, folds, labels, seed)
    fit_kwargs.setdefault("verbose", 0)

    bar = keras.utils.Progbar(folds, unit_name="fold") if verbose else None
    scores, histories = [], []
    for train_idx, val_idx in splits:
        keras.backend.clear_session()
        model = build_model()
        check_compiled(model)
        history = model.fit(
            _arrays.take(x, train_idx),
            _arrays.take(y, train_idx),
            validation_data=(
                _arrays.take(x, val_idx),
                _arrays.take(y, val_idx),
            ),
            **fit_kwargs,
        )
        score = {
            k: float(vals[-1])
            for k, vals in history.history.items()
            if k.startswith("val_")
        }
        scores.append(score)
        history.set_model(None)  # no model kept alive across folds
        histories.append(history)
        del model
        gc.collect()
        if bar is not None:
            bar.add(1, [(k, val) for k, val in score.items()])
    keras.backend.clear_session()
    mean, std = summarize(scores)
    return CVResult(scores, mean, std, histories, splits)
