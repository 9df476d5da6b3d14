"""`search`: keras-tuner's oracles behind one call, with the kit's hygiene."""

from __future__ import annotations

import contextlib
import io
import tempfile
from typing import Any, Callable

import keras_tuner as kt
import numpy as np

from keras_training_kit import _validation as v
from keras_training_kit.data import _arrays
from keras_training_kit.data.cross_validation import check_compiled
from keras_training_kit.tuning._engine import KitTuner, wrap_hypermodel
from keras_training_kit.tuning._oracles import make_oracle
from keras_training_kit.tuning.cv_tuner import CrossValidationTuner
from keras_training_kit.tuning.distributed import role
from keras_training_kit.tuning.result import SearchResult, trial_record

STRATEGIES = ("grid", "random", "bayesian", "hyperband", "tpe")


def _metric_name(metric: Any) -> str | None:
    if isinstance(metric, str):
        return metric
    if isinstance(metric, dict):
        config = metric.get("config")
        if isinstance(config, dict) and "name" in config:
            return config["name"]
        if isinstance(config, str):
            return config
        return metric.get("class_name")
    return getattr(metric, "name", getattr(metric, "__name__", None))


def _compiled_names(model: Any) -> set[str]:
    """Metric names the compile config announces (without running)."""
    names = {"loss"}
    try:
        metrics = model.get_compile_config().get("metrics") or []
    except Exception:
        return names
    if isinstance(metrics, dict):
        metrics = [m for ms in metrics.values() for m in np.ravel([ms])]
    for metric in metrics:
        name = _metric_name(metric)
        if name:
            names.add(name)
    return names


def _logged_names(model: Any, x: Any, y: Any) -> set[str] | None:
    """The metric names `evaluate` logs on two samples (None if it fails)."""
    try:
        index = np.arange(min(2, _arrays.num_samples(x)))
        logs = model.evaluate(
            _arrays.take(x, index),
            _arrays.take(y, index),
            verbose=0,
            return_dict=True,
        )
        return set(logs)
    except Exception:
        return None


def _check_objective(
    build_model: Any, name: str, x: Any, y: Any, has_validation: bool
) -> None:
    """ValueError now if `name` would not be logged by `fit`."""
    if name.startswith("val_") and not has_validation:
        raise ValueError(
            f"The objective {name!r} is a validation metric, but there is "
            "no validation data: pass `validation_data`, "
            "`validation_split` or `folds`."
        )
    base = name[4:] if name.startswith("val_") else name
    model = build_model.build(kt.HyperParameters())
    check_compiled(model)  # also for a user's own HyperModel
    if base not in _compiled_names(model):
        logged = _logged_names(model, x, y)
        if logged is not None and base not in logged:
            prefix = "val_" if has_validation else ""
            candidates = sorted(logged) + (
                sorted(prefix + k for k in logged) if prefix else []
            )
            raise ValueError(
                f"The objective {name!r} is not logged by `fit`. Logged: "
                f"{candidates}"
            )
    del model  # the session is cleared before each trial's build


def _storage(directory: Any, overwrite: bool) -> tuple[Any, bool]:
    """The `directory` and the `overwrite` this process applies.

    In keras-tuner's distributed mode the chief and every worker must share
    one project: a per-process temporary directory would split it, and a
    worker honouring `overwrite=True` would delete the shared project while
    the others run. So `directory` is required and only the chief
    overwrites.
    """
    mode = role()
    if mode == "single":
        return directory, bool(overwrite)
    if directory is None:
        raise ValueError(
            "Argument `directory` must be set in keras-tuner's distributed "
            "mode (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and "
            "KERASTUNER_ORACLE_PORT are set): the chief and every worker "
            "must share one project directory. Received: directory=None "
            f"(this process: {mode!r})"
        )
    return str(directory), bool(overwrite) and mode == "chief"


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
    prune: bool = True,
    seed: int | None = None,
    verbose: int = 1,
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

    - `prune=True`: a trial whose loss becomes NaN/Inf stops at once
      (`ktk.callbacks.TrainingDiagnosis(stop_on=("diverged",))`) and is
      recorded with status `"diverged"` and a finite score worse than any
      other trial, so bad regions of the space never trip keras-tuner's
      consecutive-failure limit and never crash the search.
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
            inferred) or a `keras_tuner.Objective`. Defaults to
            `"val_loss"`.
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
        prune: stop and record diverged trials. Defaults to `True`.
        seed: seed of the oracle and of each trial's initialization.
            Defaults to `None`.
        verbose: `0` silent, `1` a progress bar over trials, `2` also
            keras-tuner's per-trial display and `fit` logs. Defaults to `1`.
        **fit_kwargs: passed to `fit` (`batch_size`, `callbacks`...).

    Returns:
        A `SearchResult`.

    Example:

    ```python
    def build_model(hp):
        c = ktk.tuning.training_space(hp, depth=None, activation="relu")
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(c["width"], c["activation"]),
            keras.layers.Dropout(c["dropout"]),
            keras.layers.Dense(10)])
        model.compile(
            ktk.tuning.make_optimizer(c["optimizer"], c["learning_rate"]),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"])
        return model

    result = ktk.tuning.search(
        build_model, x, y, strategy="bayesian", objective="val_accuracy",
        validation_data=(x_val, y_val), max_trials=20, epochs=5,
        directory="runs")
    result.best_hyperparameters
    result.plot("search.png")
    ```

    Reference:
        - [Bergstra & Bengio 2012](https://jmlr.org/papers/v13/bergstra12a)
        - [Li et al., 2018 (Hyperband)](https://arxiv.org/abs/1603.06560)
    """
    v.check_choice("strategy", strategy, STRATEGIES)
    max_trials = v.check_positive_int("max_trials", max_trials)
    epochs = v.check_positive_int("epochs", epochs)
    v.check_choice("verbose", verbose, (0, 1, 2))
    if folds is not None:
        folds = v.check_positive_int("folds", folds, minimum=2)
        if validation_data is not None or validation_split is not None:
            raise ValueError(
                "Pass either `folds` or `validation_data`/"
                "`validation_split`, not both: folds make their own "
                "validation sets."
            )
    if validation_split is not None:
        v.check_range("validation_split", validation_split, 0.0, 1.0,
                      low_open=True, high_open=True)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(
            validation_data
        ) not in (2, 3):
            raise ValueError(
                "Argument `validation_data` must be a tuple (x_val, y_val)."
                f" Received: {type(validation_data).__name__}"
            )
        _arrays.check_xy(validation_data[0], validation_data[1])
    n = _arrays.check_xy(x, y)
    directory, overwrite = _storage(directory, overwrite)
    if folds is not None and folds > n:
        raise ValueError(
            f"Argument `folds` must be <= the number of samples ({n}). "
            f"Received: folds={folds}"
        )
    if not callable(build_model) and not isinstance(build_model, kt.HyperModel):
        raise ValueError(
            "Argument `build_model` must be a function `build_model(hp)` or "
            f"a keras_tuner.HyperModel. Received: {build_model!r}"
        )
    if isinstance(objective, str):
        name = objective
    elif isinstance(objective, kt.Objective):
        name = objective.name
    else:
        raise ValueError(
            "Argument `objective` must be a metric name or a "
            f"keras_tuner.Objective. Received: objective={objective!r}"
        )
    hypermodel = wrap_hypermodel(build_model)
    has_validation = bool(
        folds or validation_data is not None or validation_split
    )
    _check_objective(hypermodel, name, x, y, has_validation)

    oracle = make_oracle(strategy, objective, max_trials, seed, epochs)
    directory = directory or tempfile.mkdtemp(prefix="ktk_search_")
    tuner_kwargs = dict(
        directory=str(directory),
        project_name=strategy,
        overwrite=overwrite,
        prune=prune,
        verbose=verbose,
        seed=seed,
    )
    quiet = contextlib.redirect_stdout(io.StringIO()) if verbose < 2 else (
        contextlib.nullcontext()
    )
    with quiet:  # keras-tuner prints "Reloading Tuner from ..."
        if folds is not None:
            tuner = CrossValidationTuner(
                oracle,
                hypermodel,
                folds=folds,
                stratify=fit_kwargs.pop("stratify", False),
                shuffle_seed=0 if seed is None else seed,
                **tuner_kwargs,
            )
        else:
            tuner = KitTuner(oracle, hypermodel, **tuner_kwargs)

    search_kwargs = dict(fit_kwargs)
    search_kwargs["epochs"] = epochs
    # keras-tuner reads `verbose` for both fit and its own trial display.
    search_kwargs["verbose"] = 2 if verbose >= 2 else 0
    if validation_data is not None:
        search_kwargs["validation_data"] = tuple(validation_data)
    if validation_split is not None:
        search_kwargs["validation_split"] = validation_split
    tuner.search(x, y, **search_kwargs)
    return _make_result(tuner)


def _make_result(tuner: Any) -> SearchResult:
    oracle = tuner.oracle
    objective = oracle.objective
    if isinstance(oracle, kt.Oracle):  # standalone, or the chief
        trials = sorted(oracle.trials.values(), key=lambda t: t.trial_id)
        by_id = {t.trial_id: t for t in trials}
    else:  # a distributed worker: the chief may be gone already
        trials = list(tuner.local_trials)
        by_id = {t.trial_id: t for t in trials}

    def best_model(trial_id: str) -> Any:
        return tuner.load_model(by_id[trial_id])

    return SearchResult(
        [trial_record(t) for t in trials],
        objective.name,
        objective.direction,
        tuner=tuner,
        best_model_fn=best_model,
    )

