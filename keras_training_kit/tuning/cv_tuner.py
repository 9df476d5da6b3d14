"""A keras-tuner `Tuner` that scores each trial by k-fold cross-validation."""

from __future__ import annotations

import copy
from typing import Any

import keras
import keras_tuner as kt

from keras_training_kit import _compat
from keras_training_kit import _validation as v
from keras_training_kit.data import _arrays
from keras_training_kit.data.cross_validation import summarize
from keras_training_kit.tuning._engine import (
    KitTunerMixin,
    best_epoch_metrics,
    is_diverged,
    wrap_hypermodel,
)


class CrossValidationTuner(KitTunerMixin, kt.Tuner):
    """A `keras_tuner.Tuner` whose trial score is the k-fold CV mean.

    For each trial, the data passed to `search(x, y, ...)` is cut into
    `folds` parts; a fresh model (the Keras session is cleared between
    folds) trains on `folds - 1` parts and is validated on the remaining
    one, so every sample is validated exactly once. The trial reports, for
    every metric, the mean over folds of its value at the fold's best epoch
    (the objective's best, as keras-tuner does for a holdout set), and the
    standard deviation of the objective as `"<objective>_std"`. It works
    with any keras-tuner oracle (grid, random, Bayesian, Hyperband, the
    kit's TPE); under Hyperband each fold trains from scratch for the
    bracket's epochs.

    `load_model` (and so `get_best_models`) returns the model of the
    trial's last fold; for a final model, retrain on all data with
    `get_best_hyperparameters()`.

    Args:
        oracle: a `keras_tuner.Oracle`.
        hypermodel: a `keras_tuner.HyperModel` or a build function
            `build_model(hp)` returning a compiled model. A `batch_size`
            hyperparameter is passed to `fit`.
        folds: number of folds, an integer >= 2. Defaults to `5`.
        stratify: keep class proportions of `y` in each fold.
            Defaults to `False`.
        shuffle_seed: seed of the fold assignment (the same folds for
            every trial, so trials are compared on equal terms).
            Defaults to `0`.
        prune: `True` stops a fold whose loss becomes NaN/Inf and records
            the trial as diverged; `"median"`/`"asha"` (with an oracle
            built for them, as `ktk.tuning.search` does) also stop a trial
            whose learning curve is worse than the others'. The curve runs
            through the folds in order, step `(fold - 1) * epochs + epoch`,
            so trials are compared at the same fold and epoch (the folds
            are the same for every trial); a pruned trial skips its
            remaining folds and is scored on the folds it trained.
            Defaults to `True`.
        verbose: `1` shows a progress bar over trials. Defaults to `1`.
        seed: seed for weight initialization, offset per trial.
            Defaults to `None`.
        computed: objectives computed from each trained model, name ->
            `fn(model) -> float` (e.g. `{"params": ...}`). Defaults to
            `None`.
        **kwargs: `keras_tuner.Tuner` arguments (`directory`,
            `project_name`, `overwrite`, ...).

    Example:

    >>> import tempfile
    >>> import keras, keras_tuner, numpy as np
    >>> import keras_training_kit as ktk
    >>> x = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> y = (x[:, :1] > 0).astype("float32")
    >>> def build_model(hp):
    ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
    ...         1, activation="sigmoid")])
    ...     model.compile(keras.optimizers.Adam(
    ...         hp.Float("learning_rate", 1e-3, 1e-1, sampling="log")),
    ...         "binary_crossentropy")
    ...     return model
    >>> oracle = keras_tuner.oracles.RandomSearchOracle(
    ...     objective="val_loss", max_trials=2, seed=0)
    >>> tuner = ktk.tuning.CrossValidationTuner(
    ...     oracle=oracle, hypermodel=build_model, folds=3, verbose=0,
    ...     directory=tempfile.mkdtemp())
    >>> tuner.search(x, y, epochs=1, verbose=0)
    >>> "learning_rate" in tuner.get_best_hyperparameters()[0].values
    True
    """

    def __init__(
        self,
        oracle: Any,
        hypermodel: Any = None,
        folds: int = 5,
        stratify: bool = False,
        shuffle_seed: int | None = 0,
        prune: bool = True,
        verbose: int = 1,
        seed: int | None = None,
        computed: dict | None = None,
        **kwargs: Any,
    ) -> None:
        self.folds = v.check_positive_int("folds", folds, minimum=2)
        self.stratify = bool(stratify)
        self.shuffle_seed = shuffle_seed
        self._init_kit(prune, verbose, seed, computed)
        super().__init__(oracle, wrap_hypermodel(hypermodel), **kwargs)

    def _run_trial_impl(self, trial: Any, x: Any, y: Any, **kwargs: Any):
        for key in ("validation_data", "validation_split"):
            if kwargs.get(key) is not None:
                raise kt.errors.FatalValueError(
                    f"CrossValidationTuner makes the validation folds "
                    f"itself; do not pass `{key}`."
                )
            kwargs.pop(key, None)
        hp = trial.hyperparameters
        if "tuner/epochs" in hp.values:
            kwargs["epochs"] = hp.values["tuner/epochs"]
        n = _arrays.check_xy(x, y)
        labels = _arrays.labels_for_stratify(y) if self.stratify else None
        splits = _arrays.kfold(n, self.folds, labels, self.shuffle_seed)
        callbacks = kwargs.pop("callbacks", [])
        objective = self.oracle.objective
        fold_metrics = []
        model = None
        epochs = int(kwargs.get("epochs", 1))
        for fold, (train_idx, val_idx) in enumerate(splits):
            model = _compat.kt_try_build(self, hp)  # clears the session
            reporter = _FoldCurve(self, trial, fold * epochs,
                                  len(splits) * epochs)
            history = self.hypermodel.fit(
                hp,
                model,
                _arrays.take(x, train_idx),
                _arrays.take(y, train_idx),
                validation_data=(
                    _arrays.take(x, val_idx),
                    _arrays.take(y, val_idx),
                ),
                callbacks=copy.deepcopy(callbacks) + (
                    [reporter] if self.curve_pruning else []
                ),
                **kwargs,
            )
            if objective.name not in history.history:
                raise kt.errors.FatalValueError(
                    f"The objective {objective.name!r} is not logged by "
                    f"fit; logged: {sorted(history.history)}"
                )
            if self.prune and is_diverged(history, objective.name):
                return [history]  # the mixin records the trial as diverged
            fold_metrics.append(best_epoch_metrics(history.history, objective))
            if reporter.pruned:
                break  # the pruner stopped the trial: skip the other folds
        self.save_trial_model(trial.trial_id, model)
        mean, std = summarize(fold_metrics)
        mean[f"{objective.name}_std"] = std[objective.name]
        return mean


class _FoldCurve(keras.callbacks.Callback):
    """Reports each epoch of a fold at its step in the trial's curve."""

    def __init__(self, tuner: Any, trial: Any, offset: int, last: int):
        super().__init__()
        self.tuner, self.trial = tuner, trial
        self.offset, self.last = offset, last
        self.pruned = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        step = self.offset + epoch + 1
        if step < self.last and not self.pruned:  # the last: nothing to save
            self.pruned = self.tuner.report_step(
                self.trial, self.model, step, logs
            )
