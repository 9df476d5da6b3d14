"""Learning-curve pruning on the oracle, with Optuna's own pruners.

`search(prune="median")` and `prune="asha"` stop a trial early when its
learning curve is worse than the others'. The decision is Optuna's:

- `"median"`: `optuna.pruners.MedianPruner(n_startup_trials=5,
  n_warmup_steps=2)`: after epoch `s` (1-based, `s >= 2`) a trial stops when
  its best objective so far is worse than the median, over the finished
  trials, of their objective at epoch `s`; nothing is pruned before 5
  trials have finished (Optuna's defaults, with the first epoch as
  warm-up).
- `"asha"`: `optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
  reduction_factor=3)`: asynchronous successive halving (Li et al. 2020);
  at epochs 1, 3, 9, ... (rungs) a trial continues only when its value is in
  the best third of all values recorded at that rung so far.

Where it runs: keras-tuner's `Tuner.on_epoch_end` hook reports each epoch's
objective through `oracle.update_trial` (a gRPC call for a distributed
worker), tagged with `STEP_KEY`; the oracle (on the chief) keeps the curve
outside the trial's metrics, asks the pruner, and answers with a trial whose
status is `"STOPPED"` when it must stop. So every strategy and every worker
is pruned by one decision maker, against every trial's curve.

The curves of finished trials are part of the oracle's state
(`oracle.json`); the pruning study is rebuilt from them after a restart by
replaying each finished trial's reports in end order, so a resumed search
prunes as the uninterrupted one would, and a pruned trial, which ended
normally, is never re-run.

Reference:
    - [Li et al., 2020 (ASHA)](https://arxiv.org/abs/1810.05934)
    - [Optuna's pruners](https://optuna.readthedocs.io/en/stable/reference/pruners.html)
"""

from __future__ import annotations

from typing import Any

import keras_tuner as kt

from keras_training_kit import _numerics

PRUNERS = ("median", "asha")
STEP_KEY = "ktk/epoch"  # marks an intermediate report in `update_trial`
PRUNED = "pruned"  # the trial metric of a pruned trial

_STATUS = kt.engine.trial.TrialStatus


def make_pruner(kind: str) -> Any:
    """The Optuna pruner of `kind` (`"median"` or `"asha"`)."""
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if kind == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=3
        )
    raise ValueError(
        f"Argument `prune` must be one of {PRUNERS}. Received: prune={kind!r}"
    )


class PruningOracleMixin:
    """Intermediate reports, pruning decisions and their persistent state.

    Mixed in before a `keras_tuner.Oracle`. `pruning` (None, `"median"` or
    `"asha"`) is set by whoever builds the oracle; None reports nothing.
    """

    pruning: str | None = None

    def _pruning_state(self) -> dict:
        if not hasattr(self, "_ktk_curves"):
            self._ktk_curves: dict[str, dict[int, float]] = {}
            self._ktk_pruned: set[str] = set()
            self._ktk_study = None
            self._ktk_asked: dict[str, Any] = {}
        return self._ktk_curves

    @kt.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        if STEP_KEY not in metrics:
            return super().update_trial(trial_id, metrics, step)
        curves = self._pruning_state()
        epoch = int(metrics[STEP_KEY])
        value = float(metrics[self.objective.name])
        curve = curves.setdefault(trial_id, {})
        if curve and epoch <= max(curve):  # a retried trial starts again
            curve.clear()
            self._abandon(trial_id)
        curve[epoch] = value
        stop = self.pruning is not None and self._should_prune(
            trial_id, epoch, value
        )
        trial = self.trials[trial_id]
        if not stop:
            return trial
        self._ktk_pruned.add(trial_id)
        return kt.engine.trial.Trial(
            trial.hyperparameters.copy(), trial_id, _STATUS.STOPPED
        )

    def _pruning_study(self) -> Any:
        self._pruning_state()
        if self._ktk_study is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._ktk_study = optuna.create_study(
                direction="maximize"
                if self.objective.direction == "max"
                else "minimize",
                pruner=make_pruner(self.pruning),
            )
            # Replay the finished trials, in end order, as they happened.
            for trial_id in self.end_order:
                curve = self._ktk_curves.get(trial_id)
                if curve:
                    asked = self._ktk_study.ask()
                    for epoch in sorted(curve):
                        asked.report(curve[epoch], epoch)
                        asked.should_prune()
                    self._ktk_asked[trial_id] = asked
                    self._tell(trial_id)
        return self._ktk_study

    def _should_prune(self, trial_id: str, epoch: int, value: float) -> bool:
        study = self._pruning_study()
        asked = self._ktk_asked.get(trial_id)
        if asked is None:
            asked = self._ktk_asked[trial_id] = study.ask()
        if _numerics.is_nonfinite(value):
            return False  # divergence is `TrainingDiagnosis`' call
        asked.report(value, epoch)
        return bool(asked.should_prune())

    def _abandon(self, trial_id: str) -> None:
        asked = self._ktk_asked.pop(trial_id, None)
        if asked is not None and self._ktk_study is not None:
            import optuna

            self._ktk_study.tell(asked, state=optuna.trial.TrialState.FAIL)

    def _tell(self, trial_id: str) -> None:
        import optuna

        asked = self._ktk_asked.pop(trial_id, None)
        if asked is None or self._ktk_study is None:
            return
        state = optuna.trial.TrialState
        trial = self.trials[trial_id]
        score = trial.score
        if trial_id in self._ktk_pruned:
            self._ktk_study.tell(asked, state=state.PRUNED)
        elif (
            trial.status == _STATUS.COMPLETED
            and score is not None
            and not _numerics.is_nonfinite(score)
        ):
            self._ktk_study.tell(asked, float(score))
        else:
            self._ktk_study.tell(asked, state=state.FAIL)

    @kt.synchronized
    def end_trial(self, trial) -> None:
        self._pruning_state()
        if trial.trial_id in self._ktk_pruned:
            metrics = self.trials[trial.trial_id].metrics
            if not metrics.exists(PRUNED):
                metrics.register(PRUNED, direction="min")
            metrics.update(PRUNED, 1.0)
        super().end_trial(trial)
        if trial.trial_id in self.end_order:
            self._tell(trial.trial_id)

    def get_state(self) -> dict:
        state = super().get_state()
        curves = self._pruning_state()
        state["ktk_pruning"] = self.pruning
        state["ktk_curves"] = {
            t: {str(e): v for e, v in c.items()}
            for t, c in curves.items()
            if t in self.end_order
        }
        state["ktk_pruned"] = sorted(self._ktk_pruned)
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._pruning_state()
        self._ktk_curves = {
            t: {int(e): float(v) for e, v in c.items()}
            for t, c in state.get("ktk_curves", {}).items()
        }
        self._ktk_pruned = set(state.get("ktk_pruned", ()))
        self._ktk_study, self._ktk_asked = None, {}


def is_pruned(trial: Any) -> bool:
    """Whether a keras-tuner trial was stopped by the pruner."""
    try:
        return bool(trial.metrics.exists(PRUNED))
    except Exception:
        return False
