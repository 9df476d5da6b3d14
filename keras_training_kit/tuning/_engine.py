"""Shared machinery of the kit's keras-tuner tuners.

keras-tuner is imported here at module level; this module is itself only
imported lazily (through `ktk.tuning.__getattr__`), so `import
keras_training_kit` stays free of keras-tuner.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
import warnings
import zlib
from typing import Any, Callable

import keras
import keras_tuner as kt
import numpy as np

from keras_training_kit import _compat, _numerics
from keras_training_kit.callbacks import TrainingDiagnosis
from keras_training_kit.data.cross_validation import check_compiled
from keras_training_kit.tuning._pareto import is_multi, objectives_of
from keras_training_kit.tuning._pruning import PRUNERS, STEP_KEY

DIVERGED = "diverged"
_WORST = 1e6  # the score of a diverged trial when no other trial has one
_STOPPED = kt.engine.trial.TrialStatus.STOPPED


class KitHyperModel(kt.HyperModel):
    """Wraps a build function; `fit` honours a `batch_size` hyperparameter.

    keras-tuner passes the `fit` arguments of `search()` unchanged, so a
    `batch_size` declared on `hp` would be ignored without this `fit`.
    """

    def __init__(self, build_model: Callable[[Any], Any]) -> None:
        super().__init__()
        self.build_model = build_model

    def build(self, hp: Any) -> Any:
        model = self.build_model(hp)
        check_compiled(model)
        return model

    def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        if "batch_size" in hp.values:
            kwargs["batch_size"] = int(hp.values["batch_size"])
        return model.fit(*args, **kwargs)


def wrap_hypermodel(hypermodel: Any) -> Any:
    """A `HyperModel` as is; a build function wrapped in `KitHyperModel`."""
    if isinstance(hypermodel, kt.HyperModel) or hypermodel is None:
        return hypermodel
    return KitHyperModel(hypermodel)


class ObjectiveLogger(keras.callbacks.Callback):
    """Logs computed objectives (e.g. the parameter count) every epoch.

    `objectives` maps a name to `fn(model) -> float`. It runs before
    Keras' `History` (appended last by `fit`) and keras-tuner's best-epoch
    checkpoint, so both see the values as if `fit` had logged them.
    """

    def __init__(self, objectives: dict[str, Callable[[Any], float]]):
        super().__init__()
        self.objectives = dict(objectives)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            for name, fn in self.objectives.items():
                logs[name] = float(fn(self.model))


def count_params(model: Any) -> float:
    """The `"params"` objective: the model's number of weights."""
    return float(model.count_params())


def make_prune_callback() -> keras.callbacks.Callback:
    """Stops `fit` at the first NaN/Inf loss (the loss check only)."""
    return TrainingDiagnosis(
        gradients=False, activations=False, stop_on=(DIVERGED,), verbose=0
    )


def _histories(results: Any) -> list[dict]:
    items = results if isinstance(results, list) else [results]
    out = []
    for item in items:
        if isinstance(item, keras.callbacks.History):
            out.append(item.history)
        elif isinstance(item, dict):
            out.append({k: [val] for k, val in item.items()})
    return out


def is_diverged(results: Any, objective: str) -> bool:
    """Whether any loss or objective value of `results` is NaN/Inf."""
    for history in _histories(results):
        for key, values in history.items():
            if key in ("loss", "val_loss", objective) or key.endswith(
                "_loss"
            ):
                if _numerics.first_nonfinite(values) is not None:
                    return True
    return False


def best_epoch_metrics(history: dict, objective: Any) -> dict[str, float]:
    """All metrics at the epoch where `objective` is best."""
    values = np.asarray(history[objective.name], dtype="float64")
    finite = np.where(np.isfinite(values), values, np.nan)
    if np.all(np.isnan(finite)):
        epoch = len(values) - 1
    elif objective.direction == "max":
        epoch = int(np.nanargmax(finite))
    else:
        epoch = int(np.nanargmin(finite))
    return {k: float(v[epoch]) for k, v in history.items() if len(v) > epoch}


@contextlib.contextmanager
def frozen_heap():
    """The objects alive now leave the garbage collector's view meanwhile.

    keras-tuner runs two full garbage collections before every trial
    (`clear_session()` and `gc.collect()` in `Tuner._try_build`); with
    TensorFlow loaded each scans the whole heap, ~0.3-0.5 s on 2 cores, a
    fixed cost per trial that dwarfs short trials. Everything alive when
    the search starts (modules, the user's data) outlives it anyway, so it
    is moved to the permanent generation (`gc.freeze()`) for the search
    and those collections scan only what the trials create; the models of
    finished trials are still collected. Unfrozen afterwards, unless the
    process had frozen its heap itself.
    """
    was_frozen = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if not was_frozen:
            gc.unfreeze()


class KitTunerMixin:
    """Pruning, computed objectives, a progress bar and seeded trials.

    Mixed in before a `keras_tuner.Tuner`; subclasses implement
    `_run_trial_impl(trial, *args, **kwargs)`.
    """

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """keras-tuner's `search`, without its per-trial full-heap scans
        (see `frozen_heap`)."""
        with frozen_heap():
            super().search(*fit_args, **fit_kwargs)

    def _init_kit(
        self,
        prune: Any = True,
        verbose: int = 1,
        seed: int | None = None,
        computed: dict[str, Callable[[Any], float]] | None = None,
    ) -> None:
        self.prune = prune
        self.curve_pruning = prune if prune in PRUNERS else None
        self.computed_objectives = dict(computed or {})
        self.kit_verbose = verbose
        self.kit_seed = seed
        self._bar = None
        self._search_start = None
        self.local_trials: list = []  # trials run by this process

    def kit_callbacks(self) -> list:
        """The callbacks the kit adds to every `fit` of a trial."""
        callbacks = []
        if self.computed_objectives:
            callbacks.append(ObjectiveLogger(self.computed_objectives))
        if self.prune:
            callbacks.append(make_prune_callback())
        return callbacks

    # -- trial ---------------------------------------------------------
    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        # keras-tuner deep-copies the callbacks for each execution.
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + (
            self.kit_callbacks()
        )
        results = self._run_trial_impl(trial, *args, **kwargs)
        objective = self.oracle.objective
        if self.prune and is_diverged(results, objective.name):
            # A finite, clearly bad score: the trial stays COMPLETED, so
            # keras-tuner's consecutive-failure limit never ends a search
            # because of a bad region, and model-based oracles learn from it.
            if is_multi(objective):  # ranked last in every objective
                bad = {
                    o.name: -_WORST if o.direction == "max" else _WORST
                    for o in objectives_of(objective)
                }
                bad[objective.name] = _WORST * len(bad)  # keras-tuner's sum
                return {**bad, DIVERGED: 1.0}
            return {objective.name: self._penalty(results), DIVERGED: 1.0}
        return results

    def on_epoch_end(self, trial, model, epoch, logs=None) -> None:
        """Reports the epoch's objective; stops a trial the oracle prunes."""
        super().on_epoch_end(trial, model, epoch, logs=logs)
        if self.curve_pruning is None or not logs:
            return
        total = (self.params_of(model) or {}).get("epochs")
        if total is not None and epoch + 1 >= total:
            return  # the last epoch: nothing left to save
        self.report_step(trial, model, epoch + 1, logs)

    def report_step(self, trial, model, step: int, logs: dict) -> bool:
        """Reports the objective at `step` (1-based) for the pruner.

        Returns True, and stops `model`'s fit, when the oracle prunes the
        trial.
        """
        name = self.oracle.objective.name
        value = _numerics.as_float((logs or {}).get(name))
        if value is None:
            return False
        reply = self.oracle.update_trial(
            trial.trial_id, {name: value, STEP_KEY: step}, step=step
        )
        if getattr(reply, "status", None) != _STOPPED:
            return False
        model.stop_training = True
        return True

    @staticmethod
    def params_of(model: Any) -> dict | None:
        # The `params` Keras gives callbacks: read back from the History.
        history = getattr(model, "history", None)
        return getattr(history, "params", None)

    def _penalty(self, results: Any) -> float:
        objective = self.oracle.objective
        values = []
        for history in _histories(results):
            values.extend(history.get(objective.name, []))
        try:
            trials = self.oracle.get_best_trials(10**6)
        except Exception:  # the chief is unreachable: use what we have
            trials = []
        for trial in trials:
            if trial.status == "COMPLETED" and trial.score is not None:
                if not trial.metrics.exists(DIVERGED):
                    values.append(trial.score)
        values = [
            float(v) for v in values if not _numerics.is_nonfinite(v)
            and v is not None
        ]
        if not values:
            return -_WORST if objective.direction == "max" else _WORST
        if objective.direction == "max":
            worst = min(values)
            return worst - max(abs(worst), 1.0)
        worst = max(values)
        return worst + max(abs(worst), 1.0)

    # -- search hooks ------------------------------------------------------
    def on_search_begin(self) -> None:
        super().on_search_begin()
        self._search_start = time.time()
        if self.kit_verbose:
            done = sum(
                1
                for t in getattr(self.oracle, "trials", {}).values()
                if t.status in ("COMPLETED", "FAILED")
            )
            self._bar = keras.utils.Progbar(
                self.oracle.max_trials,
                stateful_metrics=["best", "elapsed_s"],
                unit_name="trial",
            )
            if done:
                self._bar.update(done)

    def on_trial_begin(self, trial: Any) -> None:
        super().on_trial_begin(trial)
        if self.kit_seed is not None:
            offset = zlib.crc32(str(trial.trial_id).encode()) % 100003
            keras.utils.set_random_seed(int(self.kit_seed) + offset)

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        if not isinstance(self.oracle, kt.Oracle):
            try:  # a worker: the scored trial lives on the chief
                trial = self.oracle.get_trial(trial.trial_id)
            except Exception:
                pass
        self.local_trials.append(trial)
        if self._bar is not None:
            best = None
            try:
                best_trials = self.oracle.get_best_trials(1)
                if best_trials and best_trials[0].score is not None:
                    best = best_trials[0].score
            except Exception:
                pass
            values = [("elapsed_s", time.time() - self._search_start)]
            if best is not None:
                values.append(("best", best))
            self._bar.add(1, values)

    # -- models ------------------------------------------------------------
    def load_model(self, trial: Any) -> Any:
        """keras-tuner's `load_model`, with the optimizer state too.

        keras-tuner loads the checkpoint into a freshly built model whose
        optimizer has no slots yet, so Keras skips the optimizer's saved
        variables with a warning; here the optimizer is then built for the
        model's variables and the checkpoint loaded again, so the best
        model resumes training where its trial stopped (step count, moving
        averages).
        """
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Skipping variable loading for optimizer"
            )
            model = super().load_model(trial)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None or optimizer.built:
            return model
        try:
            optimizer.build(model.trainable_variables)
            model.load_weights(
                _compat.kt_checkpoint_fname(self, trial.trial_id)
            )
        except Exception as e:  # noqa: BLE001 (the weights are loaded)
            warnings.warn(
                f"The optimizer state of trial {trial.trial_id} was not "
                f"restored ({type(e).__name__}: {e}); the model's weights "
                "were.", stacklevel=2,
            )
        return model

    def save_trial_model(self, trial_id: str, model: Any) -> None:
        """Writes the weights and build config that `load_model` reads."""
        model.save_weights(_compat.kt_checkpoint_fname(self, trial_id))
        with open(_compat.kt_build_config_fname(self, trial_id), "w") as f:
            json.dump(model.get_build_config(), f)


class KitTuner(KitTunerMixin, kt.Tuner):
    """A `keras_tuner.Tuner` on a holdout validation set, with the kit's
    pruning, computed objectives and progress bar.
    """

    def __init__(
        self,
        oracle: Any,
        hypermodel: Any = None,
        prune: Any = True,
        verbose: int = 1,
        seed: int | None = None,
        computed: dict | None = None,
        **kwargs: Any,
    ) -> None:
        self._init_kit(prune, verbose, seed, computed)
        super().__init__(oracle, wrap_hypermodel(hypermodel), **kwargs)

    def _run_trial_impl(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        return kt.Tuner.run_trial(self, trial, *args, **kwargs)


class KitHyperbandTuner(KitTunerMixin, kt.Hyperband):
    """`keras_tuner.Hyperband`'s own trial logic (epochs of the bracket,
    warm start from the parent trial's checkpoint) on the kit's oracle.
    """

    def __init__(
        self,
        oracle: Any,
        hypermodel: Any = None,
        prune: Any = True,
        verbose: int = 1,
        seed: int | None = None,
        computed: dict | None = None,
        **kwargs: Any,
    ) -> None:
        self._init_kit(prune, verbose, seed, computed)
        # `Hyperband.__init__` only builds a plain `HyperbandOracle`; the
        # kit's (resumable, pruning) one is passed to `Tuner` directly.
        kt.Tuner.__init__(
            self, oracle, wrap_hypermodel(hypermodel), **kwargs
        )

    def _run_trial_impl(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        return kt.Hyperband.run_trial(self, trial, *args, **kwargs)
