"""`search`'s first step: every argument checked, before any training.

`check_search(...)` turns `search`'s arguments into a `SearchPlan` or
raises `ValueError` naming the argument and what it accepts.
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any, Callable

import keras_tuner as kt
import numpy as np

from keras_training_kit import _validation as v
from keras_training_kit.data import _arrays
from keras_training_kit.data.cross_validation import check_compiled
from keras_training_kit.tuning._engine import count_params, wrap_hypermodel
from keras_training_kit.tuning._pruning import PRUNERS
from keras_training_kit.tuning.distributed import role

STRATEGIES = ("grid", "random", "bayesian", "hyperband", "tpe")
PRUNE_VALUES = (True, False, "diverged", *PRUNERS)
# Objectives the kit computes from the trained model, all minimized.
COMPUTED = {"params": count_params}


@dataclasses.dataclass
class SearchPlan:
    """The checked arguments of one `search` call."""

    strategy: str
    objective: Any  # a keras_tuner.Objective, or a list of them
    computed: dict[str, Callable[[Any], float]]
    max_trials: int
    epochs: int
    folds: int | None
    stratify: bool
    directory: str
    overwrite: bool
    prune: Any  # False, "diverged", "median" or "asha"
    seed: int | None
    verbose: int
    fit_kwargs: dict


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


def _one_objective(item: Any, index: int, computed: dict) -> Any:
    """A keras-tuner `Objective` for one item of `objective`."""
    if isinstance(item, kt.Objective):
        return item
    if isinstance(item, str):
        if item in COMPUTED:
            computed[item] = COMPUTED[item]
            return kt.Objective(item, "min")
        return item  # keras-tuner infers the direction from the name
    if callable(item):
        name = getattr(item, "__name__", "") or ""
        if not name.isidentifier():  # a lambda, a partial...
            name = f"objective_{index}"
        computed[name] = item
        return kt.Objective(name, "min")
    raise ValueError(
        "Argument `objective` must be a metric name, a keras_tuner."
        "Objective, a function `fn(model) -> float` (minimized), or a list "
        f"of these. Received: objective={item!r}"
    )


def parse_objective(objective: Any) -> tuple[Any, dict, list[str]]:
    """`(keras-tuner objective, computed objectives, logged names)`."""
    computed: dict = {}
    items = objective if isinstance(objective, (list, tuple)) else None
    if items is not None:
        if len(items) < 2:
            raise ValueError(
                "Argument `objective` must list at least two objectives "
                f"when it is a list. Received: objective={objective!r}"
            )
        parsed = [_one_objective(x, i, computed) for i, x in enumerate(items)]
    else:
        parsed = _one_objective(objective, 0, computed)
    singles = parsed if items is not None else [parsed]
    names = [o.name if isinstance(o, kt.Objective) else o for o in singles]
    if len(set(names)) != len(names):
        raise ValueError(
            "Argument `objective` must not name an objective twice. "
            f"Received: objective={objective!r}"
        )
    logged = [n for n in names if n not in computed]
    return parsed, computed, logged


def _check_validation(folds, validation_data, validation_split, n) -> None:
    if folds is not None:
        if validation_data is not None or validation_split is not None:
            raise ValueError(
                "Pass either `folds` or `validation_data`/"
                "`validation_split`, not both: folds make their own "
                "validation sets."
            )
        if folds > n:
            raise ValueError(
                f"Argument `folds` must be <= the number of samples ({n}). "
                f"Received: folds={folds}"
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


def _check_prune(
    prune: Any, objective: Any, strategy: str = "random"
) -> Any:
    if isinstance(prune, (bool, np.bool_)):
        return "diverged" if prune else False
    if prune not in PRUNE_VALUES:
        raise ValueError(
            f"Argument `prune` must be one of {PRUNE_VALUES}. "
            f"Received: prune={prune!r}"
        )
    if prune in PRUNERS or strategy == "tpe":
        import optuna  # noqa: F401 - the pruners and TPE are Optuna's
    if prune in PRUNERS and isinstance(objective, list):
        raise ValueError(
            f"Argument `prune={prune!r}` compares one objective across "
            "trials; with a list of objectives use `prune=True`. "
            f"Received: objective={objective!r}"
        )
    return prune


def check_search(
    build_model, x, y, strategy, objective, max_trials, folds,
    validation_data, validation_split, epochs, directory, overwrite, prune,
    stratify, seed, verbose, fit_kwargs,
) -> tuple[SearchPlan, Any]:
    """The `SearchPlan` and the wrapped hypermodel, or a `ValueError`."""
    v.check_choice("strategy", strategy, STRATEGIES)
    max_trials = v.check_positive_int("max_trials", max_trials)
    epochs = v.check_positive_int("epochs", epochs)
    v.check_choice("verbose", verbose, (0, 1, 2))
    if folds is not None:
        folds = v.check_positive_int("folds", folds, minimum=2)
    if stratify and folds is None:
        raise ValueError(
            "Argument `stratify=True` applies to the folds of `folds=k`. "
            "Received: folds=None"
        )
    n = _arrays.check_xy(x, y)
    _check_validation(folds, validation_data, validation_split, n)
    directory, overwrite = _storage(directory, overwrite)
    if not callable(build_model) and not isinstance(build_model, kt.HyperModel):
        raise ValueError(
            "Argument `build_model` must be a function `build_model(hp)` or "
            f"a keras_tuner.HyperModel. Received: {build_model!r}"
        )
    parsed, computed, logged = parse_objective(objective)
    prune = _check_prune(prune, parsed, strategy)
    hypermodel = wrap_hypermodel(build_model)
    has_validation = bool(
        folds or validation_data is not None or validation_split
    )
    for name in logged:
        _check_objective(hypermodel, name, x, y, has_validation)
    fit_kwargs = dict(fit_kwargs)
    fit_kwargs["epochs"] = epochs
    # keras-tuner reads `verbose` for both fit and its own trial display.
    fit_kwargs["verbose"] = 2 if verbose >= 2 else 0
    if validation_data is not None:
        fit_kwargs["validation_data"] = tuple(validation_data)
    if validation_split is not None:
        fit_kwargs["validation_split"] = validation_split
    plan = SearchPlan(
        strategy=strategy,
        objective=parsed,
        computed=computed,
        max_trials=max_trials,
        epochs=epochs,
        folds=folds,
        stratify=bool(stratify),
        directory=directory or tempfile.mkdtemp(prefix="ktk_search_"),
        overwrite=overwrite,
        prune=prune,
        seed=seed,
        verbose=verbose,
        fit_kwargs=fit_kwargs,
    )
    return plan, hypermodel
