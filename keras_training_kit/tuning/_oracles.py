"""keras-tuner's own oracles, with the two fixes resuming needs.

keras-tuner 1.4.8's `Oracle.end_trial` saves `oracle.json` before it drops
the finished trial from `ongoing_trials`; `reload` puts every ongoing trial
in the retry queue, so a search killed after that save (standalone: until
the tuner saves again; a distributed chief: until the next trial starts)
re-runs its last finished trial when resumed. `ResumableOracleMixin`, mixed
into every oracle the kit builds (and `TPEOracle`), retries only the trials
that did not finish.

keras-tuner 1.4.8's `GridSearchOracle` keeps two pieces of bookkeeping,
`_ordered_ids` (trial ids in grid order) and `_populate_next` (finished
trials whose grid successor is still to be proposed), outside
`get_state`/`set_state`. A search reloaded from its directory therefore
starts with both empty and dies with `KeyError: '<trial_id>'` in
`LinkedList.next` as soon as the first resumed trial ends
(keras-team/keras-tuner#1055). `ResumableGridSearchOracle` persists them,
and rebuilds them from the trials for state files written without them.

Every oracle the kit builds also carries `PruningOracleMixin` (learning-curve
pruning, `_pruning.py`) and `ParetoRankMixin` (multi-objective ranks,
`_pareto.py`). keras-tuner's private names are reached through
`keras_training_kit._compat` only.
"""

from __future__ import annotations

import functools

import keras_tuner as kt
from keras_tuner.oracles import GridSearchOracle

from keras_training_kit import _compat
from keras_training_kit.tuning._pareto import ParetoRankMixin
from keras_training_kit.tuning._pruning import PruningOracleMixin


def startup_trials(max_trials: int) -> int:
    """Random trials before a model-based oracle models: a quarter of the
    budget, 2 to 10.

    Optuna's fixed 10 (and keras-tuner's `3 x dimensions` for Bayesian
    optimization) would spend 10-12 of a 16-trial budget at random; a
    surrogate needs only a few points to start.
    """
    return int(min(10, max(2, max_trials // 4)))


class ResumableOracleMixin:
    """Resume without re-running finished trials; mixed in before an Oracle.

    The one implementation of the fix of keras-tuner 1.4.8's `end_trial`
    (saves the oracle while the just-finished trial is still "ongoing"):
    after `reload`, the retry queue keeps only the trials that did not
    finish. A trial counts as finished when it is in `end_order`, or when
    its own file already says COMPLETED/FAILED (a kill between the two
    files written by `end_trial`).
    """

    def reload(self) -> None:
        super().reload()
        finished = set(self.end_order)
        queue, resumed = [], []
        for trial_id in _compat.kt_retry_queue(self):
            if trial_id in queue or trial_id in resumed:
                continue
            trial = self.trials.get(trial_id)
            done = trial is not None and trial.status in (
                "COMPLETED", "FAILED"
            )
            if trial_id in finished or done:
                resumed.append(trial_id)
                if trial_id not in finished:
                    self.end_order.append(trial_id)
            else:
                queue.append(trial_id)
        _compat.kt_set_retry_queue(self, queue)
        if resumed:
            self._on_finished_at_reload(resumed)

    def _on_finished_at_reload(self, trial_ids: list[str]) -> None:
        """Hook: trials that ended after the last complete save."""


class KitOracleMixin(ResumableOracleMixin, PruningOracleMixin, ParetoRankMixin):
    """Exact resume, learning-curve pruning and Pareto ranks, in one."""


class ResumableRandomSearchOracle(
    KitOracleMixin, kt.oracles.RandomSearchOracle
):
    """`keras_tuner.oracles.RandomSearchOracle` that resumes exactly."""


class ResumableBayesianOptimizationOracle(
    KitOracleMixin, kt.oracles.BayesianOptimizationOracle
):
    """`keras_tuner.oracles.BayesianOptimizationOracle` that resumes
    exactly."""


class ResumableHyperbandOracle(KitOracleMixin, kt.oracles.HyperbandOracle):
    """`keras_tuner.oracles.HyperbandOracle` that resumes exactly."""


class ResumableGridSearchOracle(KitOracleMixin, GridSearchOracle):
    """`keras_tuner.oracles.GridSearchOracle` that survives a restart."""

    def _on_finished_at_reload(self, trial_ids: list[str]) -> None:
        # `GridSearchOracle.end_trial` queues the trial for its grid
        # successor only after the save: queue it again (repeats are fine).
        _compat.kt_grid_populate_next(self).extend(trial_ids)

    def get_state(self) -> dict:
        state = super().get_state()
        state["ordered_ids"] = _compat.kt_grid_order(self)
        state["populate_next"] = list(_compat.kt_grid_populate_next(self))
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        ordered = state.get("ordered_ids")
        if ordered is None:  # a project written by plain keras-tuner
            ordered = sorted(
                (t for t in self.start_order if t in self.trials),
                key=functools.cmp_to_key(
                    lambda a, b: _compat.kt_grid_compare(
                        self,
                        self.trials[a].hyperparameters.values,
                        self.trials[b].hyperparameters.values,
                    )
                ),
            )
        populate_next = state.get("populate_next")
        if populate_next is None:
            populate_next = list(self.end_order)
        _compat.kt_set_grid_order(self, ordered)
        _compat.kt_set_grid_populate_next(self, populate_next)
