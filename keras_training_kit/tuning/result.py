"""The outcome of `ktk.tuning.search`: best values, trials, Pareto front."""

from __future__ import annotations

import math
import os
from typing import Any, Callable

from keras_training_kit.tuning._pareto import (
    is_multi,
    objectives_of,
    pareto_ranks,
    trial_objective_values,
)
from keras_training_kit.tuning._pruning import PRUNED, is_pruned

DIVERGED = "diverged"


def _public(values: dict) -> dict:
    # Hyperband's bookkeeping ("tuner/epochs", ...) is not a user knob.
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def trial_record(trial: Any, objective: Any = None) -> dict:
    """A keras-tuner `Trial` as a plain dict row of the trials table.

    With a list of objectives, `scores` holds each objective's value and
    `score` the first one's (keras-tuner's sum of them is not kept).
    """
    status = str(trial.status).lower()
    score = trial.score
    try:
        diverged = trial.metrics.exists(DIVERGED)
    except Exception:
        diverged = False
    record = {"trial_id": trial.trial_id}
    if objective is not None and is_multi(objective):
        values = trial_objective_values(trial, objective)
        names = [o.name for o in objectives_of(objective)]
        record["scores"] = dict(zip(names, values)) if values else None
        score = values[0] if values else None
    if diverged:
        status, score = DIVERGED, float("nan")
    elif is_pruned(trial):
        status = PRUNED
    record.update(
        hyperparameters=_public(dict(trial.hyperparameters.values)),
        score=None if score is None else float(score),
        status=status,
    )
    return record


def result_from_tuner(tuner: Any) -> "SearchResult":
    """The `SearchResult` of a finished `tuner.search`."""
    import keras_tuner as kt

    oracle = tuner.oracle
    objective = oracle.objective
    if isinstance(oracle, kt.Oracle):  # standalone, or the chief
        trials = sorted(oracle.trials.values(), key=lambda t: t.trial_id)
    else:  # a distributed worker: the chief may be gone already
        trials = list(tuner.local_trials)
    by_id = {t.trial_id: t for t in trials}

    def best_model(trial_id: str) -> Any:
        return tuner.load_model(by_id[trial_id])

    singles = objectives_of(objective)
    multi = is_multi(objective)
    return SearchResult(
        [trial_record(t, objective) for t in trials],
        singles[0].name if multi else objective.name,
        singles[0].direction if multi else objective.direction,
        tuner=tuner,
        best_model_fn=best_model,
        objectives=[(o.name, o.direction) for o in singles] if multi else None,
    )


class SearchResult:
    """What a search found.

    Attributes:
        trials: one dict per trial, in trial order: `trial_id`,
            `hyperparameters` (dict), `score` (the objective; NaN for a
            diverged trial, None for a trial that failed; the first
            objective of a list), `scores` (multi-objective only: name ->
            value), `status` (`"completed"`, `"pruned"`, `"diverged"`,
            `"failed"`, `"invalid"`, `"running"`).
        best_hyperparameters: the hyperparameter values of the best
            completed trial (dict), or None if no trial completed. A pruned
            trial is never the best: it did not train to the end.
        pareto_front: the completed trials no other completed trial
            dominates (better or equal in every objective, better in one),
            ordered by the first objective; with one objective, the best
            trial alone.
        objective: the (first) objective name; `direction`: `"min"` or
            `"max"`; `objectives`: `[(name, direction), ...]` of a
            multi-objective search, else None.
        tuner: the underlying `keras_tuner.Tuner`.

    Example:

    `ktk.tuning.search` returns one (see its example); its trials read:

    >>> import keras_training_kit as ktk
    >>> result = ktk.tuning.SearchResult(
    ...     trials=[
    ...         {"trial_id": "0", "hyperparameters": {"learning_rate": 0.1},
    ...          "score": float("nan"), "status": "diverged"},
    ...         {"trial_id": "1", "hyperparameters": {"learning_rate": 1e-3},
    ...          "score": 0.25, "status": "completed"},
    ...         {"trial_id": "2", "hyperparameters": {"learning_rate": 1e-2},
    ...          "score": 0.5, "status": "completed"}],
    ...     objective="val_loss", direction="min")
    >>> result.best_hyperparameters, result.best_score
    ({'learning_rate': 0.001}, 0.25)

    and then `result.best_model()`, `result.plot("search.png")`,
    `result.to_html("search.html")`.
    """

    def __init__(
        self,
        trials: list[dict],
        objective: str,
        direction: str,
        tuner: Any = None,
        best_model_fn: Callable[[], Any] | None = None,
        objectives: list[tuple[str, str]] | None = None,
    ) -> None:
        self.trials = trials
        self.objective = objective
        self.direction = direction
        self.objectives = objectives
        self.tuner = tuner
        self._best_model_fn = best_model_fn

    @property
    def best_trial(self) -> dict | None:
        scored = [
            t
            for t in self.trials
            if t["status"] == "completed"
            and t["score"] is not None
            and math.isfinite(t["score"])
        ]
        if not scored:
            return None
        pick = max if self.direction == "max" else min
        return pick(scored, key=lambda t: t["score"])

    @property
    def best_hyperparameters(self) -> dict | None:
        best = self.best_trial
        return None if best is None else dict(best["hyperparameters"])

    @property
    def best_score(self) -> float | None:
        best = self.best_trial
        return None if best is None else best["score"]

    @property
    def pareto_front(self) -> list[dict]:
        if not self.objectives:
            best = self.best_trial
            return [] if best is None else [best]
        done = [
            t for t in self.trials
            if t["status"] == "completed" and t.get("scores")
        ]
        if not done:
            return []
        names = [n for n, _ in self.objectives]
        rows = [
            [
                -t["scores"][n] if d == "max" else t["scores"][n]
                for n, d in self.objectives
            ]
            for t in done
        ]
        ranks = pareto_ranks(rows)
        front = [t for t, r in zip(done, ranks) if r == 0]
        sign = -1.0 if self.objectives[0][1] == "max" else 1.0
        return sorted(front, key=lambda t: sign * t["scores"][names[0]])

    def best_model(self) -> Any:
        """The trained model of the best trial (its best checkpoint)."""
        if self.best_trial is None:
            raise ValueError("No trial completed: there is no best model.")
        if self._best_model_fn is None:
            raise ValueError(
                "This result has no access to the trained models (e.g. a "
                "distributed worker); rebuild from `best_hyperparameters`."
            )
        return self._best_model_fn(self.best_trial["trial_id"])

    def __repr__(self) -> str:
        return (
            f"SearchResult(trials={len(self.trials)}, "
            f"best {self.objective}={self.best_score}, "
            f"best_hyperparameters={self.best_hyperparameters})"
        )

    def plot(self, path: str) -> str:
        """Writes a PNG: score per trial, score against each knob, front.

        The first panel shows each trial's score and the best so far; one
        panel per hyperparameter shows the score against its value
        (categorical values on evenly spaced ticks; learning-rate-like
        positive ranges on a log axis). Diverged trials are drawn as red
        crosses at the top of each panel, pruned ones hollow. A
        multi-objective search adds the Pareto front of its first two
        objectives.

        Args:
            path: the PNG file to write.

        Returns:
            `path`.
        """
        from keras_training_kit.tuning import _report

        png = _report.figure_png(_report.overview_figure(self))
        folder = os.path.dirname(os.fspath(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)
        return path

    def to_html(self, path: str) -> str:
        """Writes a self-contained HTML report of the search.

        Trials table, best-so-far curve, score against each
        hyperparameter, and the Pareto front (table and figure) of a
        multi-objective search; CSS inline and figures as PNG data URIs,
        so the page opens offline.

        Args:
            path: the HTML file to write.

        Returns:
            `path`.
        """
        from keras_training_kit import _html
        from keras_training_kit.tuning import _report

        return _html.write(path, _report.html_page(self))
