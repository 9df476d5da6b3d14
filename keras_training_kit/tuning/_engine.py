"""Shared machinery of the kit's keras-tuner tuners.

keras-tuner is imported here at module level; this module is itself only
imported lazily (through `ktk.tuning.__getattr__`), so `import
keras_training_kit` stays free of keras-tuner.
"""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from typing import Any, Callable

import keras
import keras_tuner as kt
import numpy as np

from keras_training_kit.data.cross_validation import check_compiled

DIVERGED = "diverged"


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


class StopOnDivergence(keras.callbacks.Callback):
    """Stops `fit` as soon as the training loss is NaN or Inf.

    The fallback of `prune=True` while `ktk.callbacks.TrainingDiagnosis` is
    not available; quiet, unlike `keras.callbacks.TerminateOnNaN`.
    """

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


def make_prune_callback() -> keras.callbacks.Callback:
    """`TrainingDiagnosis(stop_on=("diverged",))` if the kit has it."""
    try:
        from keras_training_kit.callbacks import TrainingDiagnosis
    except ImportError:
        return StopOnDivergence()
    try:
        # Only the loss check is needed to prune: skip the costly probes.
        return TrainingDiagnosis(
            gradients=False,
            activations=False,
            stop_on=(DIVERGED,),
            verbose=0,
        )
    except Exception:  # a diagnosis with another signature: stay robust
        return StopOnDivergence()


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
                arr = np.asarray(values, dtype="float64")
                if arr.size and not np.all(np.isfinite(arr)):
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


class KitTunerMixin:
    """Pruning, memory hygiene, a progress bar and seeded trials.

    Mixed in before a `keras_tuner.Tuner`; subclasses implement
    `_run_trial_impl(trial, *args, **kwargs)`.
    """

    def _init_kit(
        self, prune: bool = True, verbose: int = 1, seed: int | None = None
    ) -> None:
        self.prune = prune
        self.kit_verbose = verbose
        self.kit_seed = seed
        self._bar = None
        self._search_start = None
        self.local_trials: list = []  # trials run by this process

    # -- trial ---------------------------------------------------------
    def _deepcopy_callbacks(self, callbacks: list) -> list:
        callbacks = super()._deepcopy_callbacks(callbacks)
        if self.prune:
            callbacks.append(make_prune_callback())
        return callbacks

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        results = self._run_trial_impl(trial, *args, **kwargs)
        name = self.oracle.objective.name
        if self.prune and is_diverged(results, name):
            # A finite, clearly bad score: the trial stays COMPLETED, so
            # keras-tuner's consecutive-failure limit never ends a search
            # because of a bad region, and model-based oracles learn from it.
            return {name: self._penalty(results), DIVERGED: 1.0}
        return results

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
        values = [float(v) for v in values if math.isfinite(float(v))]
        if not values:
            return -1e6 if objective.direction == "max" else 1e6
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
        # No clear_session here: keras-tuner's `_try_build` clears the
        # session and collects garbage before every model (a second
        # collection per trial would cost ~0.1-1 s with TF's large heap).
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
    def _try_build(self, hp: Any) -> Any:
        # keras-tuner's version runs `gc.collect()` twice per model (once
        # inside `clear_session`); with TensorFlow's large heap each full
        # collection costs 0.1-1 s, so one is kept: memory stays as flat.
        keras.backend.clear_session()
        model = self._build_hypermodel(hp)
        if not isinstance(model, keras.Model):
            raise kt.errors.FatalTypeError(
                "Expected the model-building function to return a Keras "
                f"Model. Received: {model} of type {type(model)}."
            )
        if self.max_model_size and model.built:
            size = sum(math.prod(w.shape) for w in model.trainable_weights)
            if size > self.max_model_size:
                raise kt.errors.FailedTrialError(
                    f"Oversized model: {size} parameters. Skip model."
                )
        return model

    def _build_hypermodel(self, hp: Any) -> Any:
        model = super()._build_hypermodel(hp)
        # Hyperband continues a trial from its parent's best checkpoint.
        parent = hp.values.get("tuner/trial_id")
        if parent is not None and getattr(self, "warm_start", True):
            if not model.built:
                with open(self._get_build_config_fname(parent)) as f:
                    model.build_from_config(json.load(f))
            model.load_weights(self._get_checkpoint_fname(parent))
        return model

    def save_trial_model(self, trial_id: str, model: Any) -> None:
        """Writes the weights and build config that `load_model` reads."""
        model.save_weights(self._get_checkpoint_fname(trial_id))
        with open(self._get_build_config_fname(trial_id), "w") as f:
            json.dump(model.get_build_config(), f)


class KitTuner(KitTunerMixin, kt.Tuner):
    """A `keras_tuner.Tuner` on a holdout validation set, with the kit's
    pruning, memory hygiene and progress bar; runs Hyperband brackets too.
    """

    def __init__(
        self,
        oracle: Any,
        hypermodel: Any = None,
        prune: bool = True,
        verbose: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._init_kit(prune, verbose, seed)
        super().__init__(oracle, wrap_hypermodel(hypermodel), **kwargs)

    def _run_trial_impl(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        hp = trial.hyperparameters
        if "tuner/epochs" in hp.values:
            kwargs["epochs"] = hp.values["tuner/epochs"]
            kwargs["initial_epoch"] = hp.values["tuner/initial_epoch"]
        return kt.Tuner.run_trial(self, trial, *args, **kwargs)


def ensure_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path
