"""ktk.tuning: hyperparameter search on keras-tuner.

Everything here imports keras-tuner (and `TPEOracle` Optuna), so names are
resolved lazily: `import keras_training_kit` stays light.

- `search(build_model, x, y, strategy=..., prune=..., objective=...)` ->
  `SearchResult` (`.pareto_front`, `.plot`, `.to_html`)
- `CrossValidationTuner`: a `keras_tuner.Tuner` scoring trials by k-fold CV
- `training_space(hp, **choices)`: the course's knobs on one call
- `make_optimizer(name, learning_rate)`: the kit's optimizer by name
- `TPEOracle`: Optuna's multivariate TPE as a keras-tuner oracle
- `run_workers(script, workers=2, ...)`: keras-tuner's chief/worker mode on
  this machine (`ktk tune --workers N script.py`)
"""

import importlib

_EXPORTS = {
    "search": "keras_training_kit.tuning._search",
    "SearchResult": "keras_training_kit.tuning.result",
    "CrossValidationTuner": "keras_training_kit.tuning.cv_tuner",
    "training_space": "keras_training_kit.tuning.space",
    "make_optimizer": "keras_training_kit.tuning.space",
    "ResumableGridSearchOracle": "keras_training_kit.tuning._oracles",
    "TPEOracle": "keras_training_kit.tuning.tpe",
    "run_workers": "keras_training_kit.tuning.distributed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(
        f"module 'keras_training_kit.tuning' has no attribute {name!r}"
    )


def __dir__():
    return sorted(list(globals()) + __all__)
