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
"""

from __future__ import annotations

import functools
from typing import Any

import keras_tuner as kt
from keras_tuner.oracles import GridSearchOracle


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
        for trial_id in self._retry_queue:
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
        self._retry_queue = queue
        if resumed:
            self._on_finished_at_reload(resumed)

    def _on_finished_at_reload(self, trial_ids: list[str]) -> None:
        """Hook: trials that ended after the last complete save."""


class ResumableRandomSearchOracle(
    ResumableOracleMixin, kt.oracles.RandomSearchOracle
):
    """`keras_tuner.oracles.RandomSearchOracle` that resumes exactly."""


class ResumableBayesianOptimizationOracle(
    ResumableOracleMixin, kt.oracles.BayesianOptimizationOracle
):
    """`keras_tuner.oracles.BayesianOptimizationOracle` that resumes
    exactly."""


class ResumableHyperbandOracle(
    ResumableOracleMixin, kt.oracles.HyperbandOracle
):
    """`keras_tuner.oracles.HyperbandOracle` that resumes exactly."""


class ResumableGridSearchOracle(ResumableOracleMixin, GridSearchOracle):
    """`keras_tuner.oracles.GridSearchOracle` that survives a restart."""

    def _on_finished_at_reload(self, trial_ids: list[str]) -> None:
        # `GridSearchOracle.end_trial` queues the trial for its grid
        # successor only after the save: queue it again (repeats are fine).
        self._populate_next.extend(trial_ids)

    def _ordered_list(self) -> list[str]:
        ids, memory = [], self._ordered_ids
        index = memory._next_index[None]
        while index is not None:
            ids.append(memory._memory[index])
            index = memory._next_index[index]
        return ids

    def get_state(self) -> dict:
        state = super().get_state()
        state["ordered_ids"] = self._ordered_list()
        state["populate_next"] = list(self._populate_next)
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        ordered = state.get("ordered_ids")
        if ordered is None:  # a project written by plain keras-tuner
            ordered = sorted(
                (t for t in self.start_order if t in self.trials),
                key=functools.cmp_to_key(
                    lambda a, b: self._compare(
                        self.trials[a].hyperparameters.values,
                        self.trials[b].hyperparameters.values,
                    )
                ),
            )
        populate_next = state.get("populate_next")
        if populate_next is None:
            populate_next = list(self.end_order)
        linked = type(self._ordered_ids)()
        previous = None
        for trial_id in ordered:
            linked.insert(trial_id, previous)
            previous = trial_id
        self._ordered_ids = linked
        self._populate_next = list(populate_next)


def make_oracle(
    strategy: str,
    objective: Any,
    max_trials: int,
    seed: int | None,
    epochs: int,
) -> Any:
    """The keras-tuner oracle (or the kit's TPE oracle) of `strategy`."""
    common = {"objective": objective, "seed": seed}
    if strategy == "grid":
        return ResumableGridSearchOracle(max_trials=max_trials, **common)
    if strategy == "random":
        return ResumableRandomSearchOracle(max_trials=max_trials, **common)
    if strategy == "bayesian":
        return ResumableBayesianOptimizationOracle(
            max_trials=max_trials, **common
        )
    if strategy == "hyperband":
        oracle = ResumableHyperbandOracle(
            max_epochs=epochs, factor=3, hyperband_iterations=None, **common
        )
        # Hyperband sizes its brackets from max_epochs and repeats them;
        # max_trials is the budget that ends the search.
        oracle.max_trials = max_trials
        return oracle
    if strategy == "tpe":
        try:
            from keras_training_kit.tuning.tpe import TPEOracle
        except ImportError as e:
            raise ImportError(
                "strategy='tpe' needs Optuna and keras_training_kit's TPE "
                "oracle: `pip install 'keras_training_kit[optuna]'`. "
                f"({e})"
            ) from e
        return TPEOracle(max_trials=max_trials, **common)
    raise ValueError(f"Unknown strategy {strategy!r}")
