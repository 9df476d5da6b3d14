"""`search`: keras-tuner's oracles behind one call, with the kit's hygiene.

Three steps, one module each: `_checks.check_search` (every argument,
before any training), `_construct` (the oracle and the tuner), and
`result.result_from_tuner` (the `SearchResult`).
"""

from __future__ import annotations

from typing import Any, Callable

from keras_training_kit.tuning._checks import STRATEGIES, check_search
from keras_training_kit.tuning._construct import make_oracle, make_tuner
from keras_training_kit.tuning.result import SearchResult, result_from_tuner

__all__ = ["STRATEGIES", "search"]


def search(
    build_model: Callable[[Any], Any],
    x: Any,
    y: Any,
    strategy: str = "random",
    objective: Any = "val_loss",
    max_trials: int = 10,
    folds: int | None = None,
    validation_data: Any = None,
    validation_split: float | None = None,
    epochs: int = 10,
    directory: str | None = None,
    overwrite: bool = False,
    prune: bool | str = True,
    seed: int | None = None,
    verbose: int = 1,
    stratify: bool = False,
    **fit_kwargs: Any,
) -> SearchResult:
    """Hyperparameter search with keras-tuner's own oracles.

    The course's strategies: grid search (exhaustive; "fine up to ~4
    dimensions"), random search (better when only a few of many
    hyperparameters matter, Bergstra & Bengio 2012), Bayesian optimization
    (a Gaussian-process surrogate picks the next point), plus Hyperband
    (successive halving of epochs) and TPE (Optuna's sampler, optional).
    Each trial is scored on a holdout validation set (`validation_data` or
    `validation_split`) or, with `folds=k`, by k-fold cross-validation
    (`CrossValidationTuner`). The test set stays out of it (see
    `ktk.data.HoldoutSet`).

    What the kit adds to a plain keras-tuner search:

    - `prune=True` (or `"diverged"`): a trial whose loss becomes NaN/Inf
      stops at once (`ktk.callbacks.TrainingDiagnosis(stop_on=
      ("diverged",))`) and is recorded with status `"diverged"` and a
      finite score worse than any other trial, so bad regions of the space
      never trip keras-tuner's consecutive-failure limit and never crash
      the search.
    - `prune="median"` / `"asha"`: learning-curve pruning for every
      strategy (Optuna's `MedianPruner` / `SuccessiveHalvingPruner`, on the
      oracle, so distributed workers are pruned too), on top of the
      divergence check. A pruned trial has status `"pruned"`: it is not a
      failure, not a candidate for `best_hyperparameters`, and never re-run
      after a resume.
    - `objective=[...]`: a true multi-objective search. Items are logged
      metrics, `"params"` (the parameter count) or functions
      `fn(model) -> float` (e.g. inference milliseconds), minimized; trials
      are ranked by Pareto non-domination instead of keras-tuner's sum, TPE
      uses Optuna's multi-objective TPE, and `SearchResult.pareto_front`
      lists the non-dominated trials.
    - a `batch_size` hyperparameter (e.g. from `training_space`) is passed
      to `fit`.
    - the Keras session is cleared and models freed between trials, so
      memory stays flat.
    - a progress bar over trials (trial i/n, best so far, elapsed seconds).
    - resume: with the same `directory` and `overwrite=False`, a search
      that was killed continues without redoing finished trials, for every
      strategy: keras-tuner 1.4.8 would re-run the last finished trial
      (`ResumableOracleMixin`) and cannot resume grid search at all
      (`ResumableGridSearchOracle`).
    - the distributed mode of keras-tuner works unchanged: with
      `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and
      `KERASTUNER_ORACLE_PORT` set, the chief serves the oracle (its
      `search` returns when all trials are done) and workers run trials
      (their result lists the trials they ran). See `ktk tune`.

    Bad input (unknown strategy, `folds < 2`, empty data, `len(x) !=
    len(y)`, a build function returning an uncompiled model, an objective
    that `fit` would not log) raises `ValueError` before any trial runs.

    Args:
        build_model: `build_model(hp)` -> a compiled Keras model, a
            keras-tuner build function (or a `keras_tuner.HyperModel`).
        x: training inputs (array, list, pandas object, dict of arrays).
        y: training targets.
        strategy: `"grid"`, `"random"`, `"bayesian"`, `"hyperband"` or
            `"tpe"`. Defaults to `"random"`.
        objective: the logged metric to optimize, a name (direction
            inferred), a `keras_tuner.Objective`, `"params"`, a function
            `fn(model) -> float` (minimized), or a list of these (a
            multi-objective search). Defaults to `"val_loss"`.
        max_trials: maximum number of trials, an integer >= 1. Defaults
            to `10`.
        folds: `None` (holdout validation) or the number of CV folds
            (>= 2). Defaults to `None`.
        validation_data: `(x_val, y_val)` for holdout scoring.
        validation_split: fraction of `x` held out for validation.
        epochs: epochs per trial (Hyperband: the maximum). Defaults to `10`.
        directory: where trials are stored, and resumed from. Defaults to
            a new temporary directory; required (a directory every process
            shares) in distributed mode. Each strategy has its own project
            folder inside it.
        overwrite: start afresh even if `directory` holds a search; in
            distributed mode only the chief deletes the project, workers
            ignore it. Defaults to `False` (resume).
        prune: `True`/`"diverged"` stops and records diverged trials;
            `"median"` or `"asha"` also prunes trials whose learning curve
            is worse than the others' (one objective; with `folds` the
            curve runs through the folds in order and a pruned trial skips
            its other folds); `False` turns pruning off. Defaults to
            `True`.
        seed: seed of the oracle and of each trial's initialization.
            Defaults to `None`.
        verbose: `0` silent, `1` a progress bar over trials, `2` also
            keras-tuner's per-trial display and `fit` logs. Defaults to `1`.
        stratify: with `folds`, keep the class proportions of `y` in each
            fold. Defaults to `False`.
        **fit_kwargs: passed to `fit` (`batch_size`, `callbacks`...).

    Returns:
        A `SearchResult`.

    Example:

    >>> import tempfile
    >>> import numpy as np, keras
    >>> import keras_training_kit as ktk
    >>> rng = np.random.default_rng(0)
    >>> x, x_val = rng.normal(size=(2, 96, 64)).astype("float32")
    >>> y, y_val = (x[:, 0] > 0).astype("int32"), (x_val[:, 0] > 0).astype(
    ...     "int32")
    >>> def build_model(hp):
    ...     c = ktk.tuning.training_space(hp, depth=None, activation="relu")
    ...     model = keras.Sequential([
    ...         keras.Input((64,)),
    ...         keras.layers.Dense(c["width"], c["activation"]),
    ...         keras.layers.Dropout(c["dropout"]),
    ...         keras.layers.Dense(10)])
    ...     model.compile(
    ...         ktk.tuning.make_optimizer(c["optimizer"], c["learning_rate"]),
    ...         keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...         metrics=["accuracy"])
    ...     return model
    >>> result = ktk.tuning.search(
    ...     build_model, x, y, strategy="bayesian", objective="val_accuracy",
    ...     validation_data=(x_val, y_val), max_trials=2, epochs=1,
    ...     directory=tempfile.mkdtemp(), seed=0, verbose=0)
    >>> len(result.trials), "learning_rate" in result.best_hyperparameters
    (2, True)

    At scale (not run here):

    ```python
    result = ktk.tuning.search(
        build_model, x, y, strategy="bayesian", objective="val_accuracy",
        validation_data=(x_val, y_val), max_trials=20, epochs=5,
        directory="runs")
    result.plot("search.png")
    result.to_html("search.html")

    # Stop poor learning curves early (ASHA) ...
    result = ktk.tuning.search(
        build_model, x, y, strategy="tpe", prune="asha",
        validation_split=0.2, max_trials=40, epochs=9)
    # ... or trade the validation loss against the model's size.
    result = ktk.tuning.search(
        build_model, x, y, strategy="tpe", validation_split=0.2,
        objective=["val_loss", "params"], max_trials=40, epochs=5)
    [t["scores"] for t in result.pareto_front]
    ```

    Reference:
        - [Bergstra & Bengio 2012](https://jmlr.org/papers/v13/bergstra12a)
        - [Li et al., 2018 (Hyperband)](https://arxiv.org/abs/1603.06560)
    """
    plan, hypermodel = check_search(
        build_model, x, y, strategy, objective, max_trials, folds,
        validation_data, validation_split, epochs, directory, overwrite,
        prune, stratify, seed, verbose, fit_kwargs,
    )
    oracle = make_oracle(
        plan.strategy, plan.objective, plan.max_trials, plan.seed,
        plan.epochs, plan.prune,
    )
    tuner = make_tuner(plan, oracle, hypermodel)
    tuner.search(x, y, **plan.fit_kwargs)
    return result_from_tuner(tuner)
