"""A keras-tuner `Oracle` backed by Optuna's Tree-structured Parzen Estimator.

TPE (Bergstra, Bardenet, Bengio & Kégl 2011) is the sampler keras-tuner users
ask for most and the one keras-tuner lacks. Instead of one surrogate model of
the objective (Bayesian optimization's Gaussian process), TPE splits the
finished trials at the quantile `γ` of their scores into "good" and "bad" and
models each group by a Parzen (kernel density) estimator, `l(x)` and `g(x)`.
The next point maximizes the expected improvement, which is monotone in the
density ratio:

```
x_next = argmax_x  l(x) / g(x)      over candidates drawn from l(x)
```

The algorithm itself is Optuna's `TPESampler`; this module only translates
between keras-tuner's search space and trials and Optuna's distributions and
ask/tell interface, with Optuna 5's defaults: multivariate TPE (one joint
density over all hyperparameters) and the constant liar (a running trial
counts as bad, so parallel workers do not all propose the same point). With
a list of objectives it is Optuna's multi-objective TPE (Ozaki et al.
2022): trials are split into good and bad by non-domination rank.

Reference:
    - [Bergstra et al., 2011](https://papers.nips.cc/paper/4443-algorithms-for-hyper-parameter-optimization)
    - [Optuna's TPESampler](https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.TPESampler.html)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras_tuner

from keras_training_kit import _compat, _numerics
from keras_training_kit import _validation as v
from keras_training_kit.tuning._oracles import KitOracleMixin, startup_trials
from keras_training_kit.tuning._pareto import (
    is_multi,
    objectives_of,
    trial_objective_values,
)


class _Dimension:
    """One keras-tuner hyperparameter seen as one Optuna distribution.

    Optuna samples `x` from `distribution`; `to_value(x)` is the value the
    hypermodel receives and `to_optuna(value)` maps it back, so trials can be
    told to a study rebuilt from keras-tuner's trial files. Stepped grids in
    log scale, and Float steps (inexact in floating point), are sampled by
    their index in keras-tuner's own value grid, which is ordinal for TPE.
    """

    def __init__(self, hp, optuna):
        d = optuna.distributions
        self.hp = hp
        self.kind = "value"
        if isinstance(hp, keras_tuner.engine.hyperparameters.Boolean):
            self.distribution = d.CategoricalDistribution([False, True])
        elif isinstance(hp, keras_tuner.engine.hyperparameters.Choice):
            self.distribution = d.CategoricalDistribution(list(hp.values))
        elif isinstance(
            hp,
            (
                keras_tuner.engine.hyperparameters.Int,
                keras_tuner.engine.hyperparameters.Float,
            ),
        ):
            is_int = isinstance(hp, keras_tuner.engine.hyperparameters.Int)
            lo, hi, step = hp.min_value, hp.max_value, hp.step
            if step is not None and (hp.sampling != "linear" or not is_int):
                self.kind = "index"
                self.grid = list(hp.values)
                self.distribution = d.IntDistribution(0, len(self.grid) - 1)
            elif is_int and hp.sampling == "linear":
                hi = lo + (hi - lo) // step * step
                self.distribution = d.IntDistribution(lo, hi, step=step)
            else:
                # log: log-uniform; reverse_log: `max + min - y` with y
                # log-uniform, keras-tuner's definition of reverse_log.
                if hp.sampling == "reverse_log":
                    self.kind = "reverse"
                dist = d.IntDistribution if is_int else d.FloatDistribution
                log = hp.sampling != "linear"
                self.distribution = dist(lo, hi, log=log)
        else:  # pragma: no cover - keras-tuner has no other types
            raise ValueError(
                f"`TPEOracle` cannot tune hyperparameter {hp!r} of type "
                f"{type(hp).__name__}. Supported: Boolean, Choice, Int, Float "
                "and Fixed."
            )

    def suggest(self, trial) -> Any:
        name, dist = self.hp.name, self.distribution
        if hasattr(dist, "choices"):
            x = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist.low, int) and hasattr(dist, "step"):
            x = trial.suggest_int(
                name, dist.low, dist.high, step=dist.step, log=dist.log
            )
        else:
            x = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        return self.to_value(x)

    def to_value(self, x: Any) -> Any:
        if self.kind == "index":
            value = self.grid[int(x)]
            if isinstance(self.hp, keras_tuner.engine.hyperparameters.Int):
                return int(round(value))
            return value
        if self.kind == "reverse":
            return type(x)(self.hp.max_value + self.hp.min_value - x)
        return x

    def to_optuna(self, value: Any) -> Any:
        if self.kind == "index":
            diffs = [abs(g - value) for g in self.grid]
            return int(min(range(len(diffs)), key=diffs.__getitem__))
        if self.kind == "reverse":
            return type(value)(self.hp.max_value + self.hp.min_value - value)
        return value


class TPEOracle(KitOracleMixin, keras_tuner.Oracle):
    """Tree-structured Parzen Estimator search, with Optuna's `TPESampler`.

    A drop-in keras-tuner oracle: use it with any `keras_tuner.Tuner`, with
    `ktk.tuning.search(strategy="tpe")`, and in keras-tuner's distributed
    (chief/worker) mode. The first `n_startup_trials` trials are sampled at
    random; after that TPE splits the finished trials at a quantile of their
    scores into good and bad, fits a Parzen density to each, `l(x)` and
    `g(x)`, and proposes the candidate with the largest ratio:

    ```
    x_next = argmax_x  l(x) / g(x)
    ```

    keras-tuner's hyperparameter types map to Optuna distributions:
    `Choice` and `Boolean` are categorical; `Int` and `Float` keep their
    range, `step` and `sampling` (`"log"` is log-uniform, `"reverse_log"` is
    mirrored log-uniform, stepped log grids are sampled by grid index);
    `Fixed` is not tuned. Conditional hyperparameters are sampled only when
    active. The sampler is multivariate (Optuna 5's default: one joint
    Parzen estimator, so interactions such as learning rate x batch size
    are modelled). Trials running on other workers count as bad while they
    run (Optuna's constant liar), so parallel workers do not all propose the
    same point. With a list of objectives the study is multi-objective and
    "good" means a low non-domination rank.

    The Optuna study lives only in memory: the oracle's state is keras-tuner's
    own (trial files plus `oracle.json`) and the study is rebuilt from the
    finished trials on reload, so `overwrite=False` resumes a search and the
    chief of a distributed search can be restarted; a resumed search retries
    only unfinished trials (`ResumableOracleMixin`).

    Args:
        objective: A string, `keras_tuner.Objective` or list of them, as in
            every keras-tuner oracle; its direction decides whether TPE
            minimizes or maximizes. Defaults to `None` (the value returned by
            `run_trial`, minimized).
        max_trials: Number of trials to run at most. Defaults to `10`.
        seed: Optional integer seed of the sampler; a search with the same
            seed proposes the same points. Defaults to `None`.
        hyperparameters: Optional `keras_tuner.HyperParameters` declaring or
            overriding the search space. Defaults to `None`.
        n_startup_trials: Number of random trials before TPE starts
            modelling, an integer >= 0, or `None`: a quarter of
            `max_trials`, between 2 and 10 (`startup_trials`). Defaults to
            `None`.
        allow_new_entries: Whether the hypermodel may request
            hyperparameters not in `hyperparameters`. Defaults to `True`.
        tune_new_entries: Whether such new hyperparameters are tuned (else
            their default is used). Defaults to `True`.
        max_retries_per_trial: Retries of a crashed trial. Defaults to `0`.
        max_consecutive_failed_trials: Failed trials in a row that stop the
            search. Defaults to `3`.

    Example (`ktk.tuning.search(..., strategy="tpe")` does the same):

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
    >>> oracle = ktk.tuning.TPEOracle(objective="val_loss", max_trials=3,
    ...                               seed=0)
    >>> tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build_model,
    ...                           directory=tempfile.mkdtemp())
    >>> tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    >>> len(oracle.trials)
    3

    Reference:
        - [Bergstra et al., 2011](https://papers.nips.cc/paper/4443-algorithms-for-hyper-parameter-optimization)
        - [Watanabe, 2023](https://arxiv.org/abs/2304.11127)
    """

    def __init__(
        self,
        objective=None,
        max_trials: int = 10,
        seed: int | None = None,
        hyperparameters=None,
        n_startup_trials: int | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ):
        v.check_positive_int("max_trials", max_trials)
        if seed is not None:
            v.check_positive_int("seed", seed, minimum=0)
        if n_startup_trials is None:
            n_startup_trials = startup_trials(max_trials)
        v.check_positive_int("n_startup_trials", n_startup_trials, minimum=0)
        v.check_positive_int(
            "max_retries_per_trial", max_retries_per_trial, minimum=0
        )
        v.check_positive_int(
            "max_consecutive_failed_trials", max_consecutive_failed_trials
        )
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.n_startup_trials = n_startup_trials
        self._reset_study()

    def _reset_study(self) -> None:
        self._study = None
        # keras-tuner trial id -> the Optuna trial asked for it.
        self._asked = {}
        # Trial ids already told to the study.
        self._told = set()

    # --- Optuna study, kept in sync with keras-tuner's trials --------------

    # Multi-objective TPE ranks by non-domination itself.
    _rank_in_populate = False

    def _directions(self) -> list[str]:
        return [
            "maximize" if o.direction == "max" else "minimize"
            for o in objectives_of(self.objective)
        ]

    def _values(self, trial) -> Any:
        """The value(s) to tell Optuna for a completed trial, or None."""
        if trial.status != keras_tuner.engine.trial.TrialStatus.COMPLETED:
            return None
        if is_multi(self.objective):
            return trial_objective_values(trial, self.objective)
        score = trial.score
        if score is None or not math.isfinite(score):
            return None
        return float(score)

    def _dimensions(self, optuna) -> dict[str, _Dimension]:
        return {
            hp.name: _Dimension(hp, optuna)
            for hp in self.hyperparameters.space
            if not isinstance(hp, keras_tuner.engine.hyperparameters.Fixed)
        }

    def _get_study(self):
        import optuna

        if self._study is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            # Reseeding by the number of finished trials keeps a resumed
            # search deterministic for a given seed.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # experimental-API notices
                sampler = optuna.samplers.TPESampler(
                    n_startup_trials=self.n_startup_trials,
                    seed=self.seed + len(self.end_order),
                )
                self._study = optuna.create_study(
                    directions=self._directions(), sampler=sampler
                )
        self._sync(optuna)
        return self._study

    def _sync(self, optuna) -> None:
        """Tell the study every trial keras-tuner has finished since."""
        dims = self._dimensions(optuna)
        state = optuna.trial.TrialState
        for trial_id in self.end_order:
            if trial_id in self._told:
                continue
            self._told.add(trial_id)
            trial = self.trials[trial_id]
            values = self._values(trial)
            curve = self._pruned_curve(trial_id)
            if trial_id in self._asked:
                asked = self._asked.pop(trial_id)
                if curve:
                    # TPE ranks a pruned trial by how far it got and its
                    # last value, below every completed one (Optuna's
                    # semantics), not as if its partial score were final.
                    for epoch, value in curve.items():
                        asked.report(value, epoch)
                    self._study.tell(asked, state=state.PRUNED)
                elif values is not None:
                    self._study.tell(asked, values)
                else:
                    self._study.tell(asked, state=state.FAIL)
            elif curve or values is not None:
                self._add_finished(optuna, dims, trial, values, curve)
        # Retried trials keep their values; their asked Optuna trial stays
        # RUNNING (a constant lie) until keras-tuner ends them for good.

    def _pruned_curve(self, trial_id: str) -> dict[int, float] | None:
        """The finite learning curve of a trial the pruner stopped, in
        epoch order; None for any other trial (and for multi-objective
        studies, where Optuna has no intermediate values)."""
        if is_multi(self.objective):
            return None
        self._pruning_state()
        if trial_id not in self._ktk_pruned:
            return None
        curve = self._ktk_curves.get(trial_id) or {}
        curve = {e: v for e, v in sorted(curve.items())
                 if not _numerics.is_nonfinite(v)}
        return curve or None

    def _add_finished(self, optuna, dims, trial, values, curve=None) -> None:
        params, distributions = {}, {}
        for name, value in trial.hyperparameters.values.items():
            if name in dims:
                params[name] = dims[name].to_optuna(value)
                distributions[name] = dims[name].distribution
        many = isinstance(values, list)
        try:
            if curve:
                frozen = optuna.trial.create_trial(
                    state=optuna.trial.TrialState.PRUNED,
                    params=params,
                    distributions=distributions,
                    intermediate_values=curve,
                )
            else:
                frozen = optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=None if many else values,
                    values=values if many else None,
                )
        except ValueError:
            return  # values outside today's space: nothing to learn from
        self._study.add_trial(frozen)

    # --- keras-tuner Oracle interface --------------------------------------

    def populate_space(self, trial_id: str) -> dict:
        """Ask TPE for the values of a new trial.

        Called by `create_trial`, which holds the oracle's lock
        (`@keras_tuner.synchronized`), so the study is never touched by two
        gRPC requests at once.

        Args:
            trial_id: A string, the ID for this Trial.

        Returns:
            A dictionary with keys "values" and "status" ("RUNNING", or
            "STOPPED" when the space is exhausted).
        """
        import optuna

        status = keras_tuner.engine.trial.TrialStatus
        study = self._get_study()
        dims = self._dimensions(optuna)
        for _ in range(_compat.kt_max_collisions(self) + 1):
            asked = study.ask()
            hps = keras_tuner.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if hps.is_active(hp):
                    if hp.name in dims:
                        hps.values[hp.name] = dims[hp.name].suggest(asked)
                    else:
                        hps.values[hp.name] = hp.value
            if not _compat.kt_duplicate(self, hps.values):
                self._asked[trial_id] = asked
                return {"status": status.RUNNING, "values": hps.values}
            # A repeat of a tried point teaches nothing: drop it.
            study.tell(asked.number, state=optuna.trial.TrialState.FAIL)
        # TPE keeps proposing tried points (a small discrete space): fall
        # back to keras-tuner's random sampling, which detects exhaustion.
        values = _compat.kt_random_values(self)
        if values is None:
            return {"status": status.STOPPED, "values": None}
        return {"status": status.RUNNING, "values": values}

    @keras_tuner.synchronized
    def end_trial(self, trial) -> None:
        """Record a finished trial and tell its score to the study."""
        import optuna

        super().end_trial(trial)
        if self._study is not None:
            self._sync(optuna)

    def get_state(self) -> dict:
        state = super().get_state()
        state["n_startup_trials"] = self.n_startup_trials
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.n_startup_trials = state["n_startup_trials"]
        # The study is rebuilt from the reloaded trials on the next ask.
        self._reset_study()
