"""The outcome of `ktk.tuning.search`: best values, trials table, plot."""

from __future__ import annotations

import math
from typing import Any, Callable

DIVERGED = "diverged"


def _public(values: dict) -> dict:
    # Hyperband's bookkeeping ("tuner/epochs", ...) is not a user knob.
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def trial_record(trial: Any) -> dict:
    """A keras-tuner `Trial` as a plain dict row of the trials table."""
    status = str(trial.status).lower()
    score = trial.score
    try:
        diverged = trial.metrics.exists(DIVERGED)
    except Exception:
        diverged = False
    if diverged:
        status, score = DIVERGED, float("nan")
    return {
        "trial_id": trial.trial_id,
        "hyperparameters": _public(dict(trial.hyperparameters.values)),
        "score": None if score is None else float(score),
        "status": status,
    }


class SearchResult:
    """What a search found.

    Attributes:
        trials: one dict per trial, in trial order: `trial_id`,
            `hyperparameters` (dict), `score` (the objective; NaN for a
            diverged trial, None for a trial that failed), `status`
            (`"completed"`, `"diverged"`, `"failed"`, `"invalid"`,
            `"running"`).
        best_hyperparameters: the hyperparameter values of the best
            completed trial (dict), or None if no trial completed.
        objective: the objective name; `direction`: `"min"` or `"max"`.
        tuner: the underlying `keras_tuner.Tuner`.

    Example:

    ```python
    result = ktk.tuning.search(build_model, x, y, validation_split=0.2)
    result.best_hyperparameters
    model = result.best_model()
    result.plot("search.png")
    ```
    """

    def __init__(
        self,
        trials: list[dict],
        objective: str,
        direction: str,
        tuner: Any = None,
        best_model_fn: Callable[[], Any] | None = None,
    ) -> None:
        self.trials = trials
        self.objective = objective
        self.direction = direction
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
        """Writes a PNG: score per trial, and score against each knob.

        The first panel shows each trial's score and the best so far; one
        panel per hyperparameter shows the score against its value
        (categorical values on evenly spaced ticks; learning-rate-like
        positive ranges on a log axis). Diverged trials are drawn as red
        crosses at the top of each panel.

        Args:
            path: the PNG file to write.

        Returns:
            `path`.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        names = []
        for t in self.trials:
            for k in t["hyperparameters"]:
                if k not in names:
                    names.append(k)
        ncols = min(3, len(names) + 1)
        nrows = math.ceil((len(names) + 1) / ncols)
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False
        )
        axes = axes.ravel()
        ok = [
            (i, t)
            for i, t in enumerate(self.trials)
            if t["score"] is not None and math.isfinite(t["score"])
        ]
        bad = [i for i, t in enumerate(self.trials) if t["status"] == DIVERGED]
        scores = [t["score"] for _, t in ok]
        top = (max(scores) if self.direction == "min" else min(scores)) if (
            scores
        ) else 0.0

        ax = axes[0]
        ax.plot([i + 1 for i, _ in ok], scores, "o", label="trial")
        best, run = [], None
        for s in scores:
            run = s if run is None else (
                min(run, s) if self.direction == "min" else max(run, s)
            )
            best.append(run)
        ax.step([i + 1 for i, _ in ok], best, where="post", label="best so far")
        if bad:
            ax.plot([i + 1 for i in bad], [top] * len(bad), "rx",
                    label=DIVERGED)
        ax.set_xlabel("trial")
        ax.set_ylabel(self.objective)
        ax.set_title("score per trial")
        ax.legend(fontsize=7)

        for ax, name in zip(axes[1:], names):
            xs = [t["hyperparameters"].get(name) for _, t in ok]
            numeric = all(
                isinstance(x, (int, float)) and not isinstance(x, bool)
                for x in xs if x is not None
            )
            if numeric:
                pairs = [(x, s) for x, s in zip(xs, scores) if x is not None]
                ax.plot([p[0] for p in pairs], [p[1] for p in pairs], "o")
                positive = [p[0] for p in pairs if p[0] > 0]
                if positive and len(positive) == len(pairs) and (
                    max(positive) / min(positive) >= 100
                ):
                    ax.set_xscale("log")
            else:
                cats = []
                for x in xs:
                    if str(x) not in cats:
                        cats.append(str(x))
                ax.plot([cats.index(str(x)) for x in xs], scores, "o")
                ax.set_xticks(range(len(cats)))
                ax.set_xticklabels(cats, rotation=30, fontsize=7)
            ax.set_xlabel(name)
            ax.set_ylabel(self.objective)
        for ax in axes[len(names) + 1:]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=80)
        plt.close(fig)
        return path
