"""`search`'s second step: the oracle and the tuner of a checked plan."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from keras_training_kit.tuning._engine import KitHyperbandTuner, KitTuner
from keras_training_kit.tuning._oracles import (
    ResumableBayesianOptimizationOracle,
    ResumableGridSearchOracle,
    ResumableHyperbandOracle,
    ResumableRandomSearchOracle,
    startup_trials,
)
from keras_training_kit.tuning._pruning import PRUNERS
from keras_training_kit.tuning.cv_tuner import CrossValidationTuner

_ORACLES = {
    "grid": ResumableGridSearchOracle,
    "random": ResumableRandomSearchOracle,
}


def make_oracle(
    strategy: str,
    objective: Any,
    max_trials: int,
    seed: int | None,
    epochs: int,
    prune: Any = True,
) -> Any:
    """The keras-tuner oracle (or the kit's TPE oracle) of `strategy`.

    `prune` in `("median", "asha")` switches on the oracle's learning-curve
    pruning; any other value leaves it off.
    """
    common = {"objective": objective, "seed": seed}
    if strategy in _ORACLES:
        oracle = _ORACLES[strategy](max_trials=max_trials, **common)
    elif strategy == "bayesian":
        oracle = ResumableBayesianOptimizationOracle(
            max_trials=max_trials,
            num_initial_points=startup_trials(max_trials),
            **common,
        )
    elif strategy == "hyperband":
        oracle = ResumableHyperbandOracle(
            max_epochs=epochs, factor=3, hyperband_iterations=None, **common
        )
        # Hyperband sizes its brackets from max_epochs and repeats them;
        # max_trials is the budget that ends the search.
        oracle.max_trials = max_trials
    elif strategy == "tpe":
        from keras_training_kit.tuning.tpe import TPEOracle

        oracle = TPEOracle(max_trials=max_trials, **common)
    else:
        raise ValueError(f"Unknown strategy {strategy!r}")
    oracle.pruning = prune if prune in PRUNERS else None
    return oracle


def make_tuner(plan: Any, oracle: Any, hypermodel: Any) -> Any:
    """The keras-tuner `Tuner` that runs `plan`'s trials with `oracle`."""
    kwargs = dict(
        directory=str(plan.directory),
        project_name=plan.strategy,
        overwrite=plan.overwrite,
        prune=plan.prune,
        verbose=plan.verbose,
        seed=plan.seed,
        computed=plan.computed,
    )
    quiet = (
        contextlib.redirect_stdout(io.StringIO())
        if plan.verbose < 2
        else contextlib.nullcontext()
    )
    with quiet:  # keras-tuner prints "Reloading Tuner from ..."
        if plan.folds is not None:
            return CrossValidationTuner(
                oracle,
                hypermodel,
                folds=plan.folds,
                stratify=plan.stratify,
                shuffle_seed=0 if plan.seed is None else plan.seed,
                **kwargs,
            )
        if plan.strategy == "hyperband":
            return KitHyperbandTuner(oracle, hypermodel, **kwargs)
        return KitTuner(oracle, hypermodel, **kwargs)
