"""Multi-objective search: Pareto ranks instead of keras-tuner's sum.

keras-tuner's `MultiObjective` scores a trial by the sum of its objectives
(minimized ones minus maximized ones), which mixes units (a loss plus a
parameter count) and lets the largest one decide. Here trials are ranked by
non-domination (Deb et al. 2002): trial `a` dominates `b` when it is at
least as good in every objective and better in one; rank 0 is the Pareto
front (no trial dominates it), rank 1 the front once rank 0 is removed, ...

```
a ≺ b  ⇔  ∀i: a_i ≤ b_i  and  ∃i: a_i < b_i     (all objectives minimized)
```

`ParetoRankMixin` makes keras-tuner's oracles use these ranks wherever they
compare trials (`get_best_trials`, and the scores Bayesian optimization and
Hyperband read in `populate_space`); the kit's TPE asks Optuna's
multi-objective TPE instead.

Reference:
    - [Deb et al., 2002 (NSGA-II)](https://doi.org/10.1109/4235.996017)
"""

from __future__ import annotations

import math
from typing import Any

import keras_tuner as kt
import numpy as np

_COMPLETED = kt.engine.trial.TrialStatus.COMPLETED


def objectives_of(objective: Any) -> list[Any]:
    """The single objectives of a keras-tuner objective (one or many)."""
    return list(getattr(objective, "objectives", None) or [objective])


def is_multi(objective: Any) -> bool:
    """Whether `objective` is keras-tuner's `MultiObjective` (a list)."""
    # Duck-typed: keras-tuner does not export `MultiObjective`.
    return hasattr(objective, "name_to_direction")


def pareto_ranks(values: Any) -> np.ndarray:
    """Non-domination rank of each row of `values` (all minimized)."""
    v = np.asarray(values, dtype="float64")
    if v.ndim != 2:
        raise ValueError(
            f"`values` must be a 2-D array. Received shape {v.shape}"
        )
    n = len(v)
    ranks = np.full(n, -1, dtype=int)
    # dominates[i, j]: row i dominates row j.
    le = (v[:, None, :] <= v[None, :, :]).all(axis=2)
    lt = (v[:, None, :] < v[None, :, :]).any(axis=2)
    dominates = le & lt
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        dominated = (dominates[remaining][:, remaining]).any(axis=0)
        front = np.flatnonzero(remaining)[~dominated]
        ranks[front] = rank
        remaining[front] = False
        rank += 1
    return ranks


def trial_objective_values(trial: Any, objective: Any) -> list[float] | None:
    """The value of each single objective of a finished trial, or None."""
    out = []
    for single in objectives_of(objective):
        try:
            value = trial.metrics.get_best_value(single.name)
        except Exception:
            return None
        if value is None or not math.isfinite(float(value)):
            return None
        out.append(float(value))
    return out


def minimized(values: list[float], objective: Any) -> list[float]:
    """Values turned into "smaller is better" (maximized ones negated)."""
    return [
        -x if single.direction == "max" else x
        for x, single in zip(values, objectives_of(objective))
    ]


class ParetoRankMixin:
    """Trials compared by Pareto rank when the objective is a list.

    Mixed in before a `keras_tuner.Oracle`; with one objective it changes
    nothing. The sum keras-tuner computes stays the trial's stored score;
    ranks replace it only while the oracle compares trials.
    """

    _rank_in_populate = True

    def _ranked(self) -> list[tuple[Any, int, float]]:
        rows, trials = [], []
        for trial in self.trials.values():
            if trial.status != _COMPLETED or trial.score is None:
                continue
            values = trial_objective_values(trial, self.objective)
            if values is None:
                continue
            rows.append(minimized(values, self.objective))
            trials.append(trial)
        if not trials:
            return []
        ranks = pareto_ranks(rows)
        return [(t, int(r), float(t.score)) for t, r in zip(trials, ranks)]

    def get_best_trials(self, num_trials: int = 1) -> list:
        if not is_multi(self.objective):
            return super().get_best_trials(num_trials)
        ranked = sorted(self._ranked(), key=lambda x: (x[1], x[2]))
        best = [t for t, _, _ in ranked]
        if len(best) < num_trials:
            best += [t for t in self.trials.values() if t not in best]
        return best[:num_trials]

    def populate_space(self, trial_id: str) -> dict:
        if not (is_multi(self.objective) and self._rank_in_populate):
            return super().populate_space(trial_id)
        ranked = self._ranked()
        saved = [(t, t.score) for t, _, _ in ranked]
        for trial, rank, _ in ranked:
            trial.score = float(rank)  # "min" is MultiObjective's direction
        try:
            return super().populate_space(trial_id)
        finally:
            for trial, score in saved:
                trial.score = score
