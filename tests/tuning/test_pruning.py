"""Learning-curve pruning: Optuna's rules on the oracle, checked by NumPy."""

import keras
import keras_tuner as kt
import numpy as np
import pytest

from keras_training_kit import _compat
from keras_training_kit.tuning import search
from keras_training_kit.tuning._construct import make_oracle
from keras_training_kit.tuning._pruning import STEP_KEY

EPOCHS = 9


def _oracle(kind, tmp_path, strategy="random", max_trials=40):
    oracle = make_oracle(strategy, "val_loss", max_trials, 1, EPOCHS, kind)
    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle.hyperparameters = hp
    _compat.kt_set_project_dir(oracle, str(tmp_path), strategy)
    return oracle


def _curves(n, seed=0):
    """Synthetic decreasing learning curves, one level per trial."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.2, 2.0, size=n)
    noise = rng.normal(0, 0.05, size=(n, EPOCHS))
    steps = np.arange(1, EPOCHS + 1)
    return level[:, None] * (1.0 + 2.0 / steps) + noise


def _drive(oracle, curves):
    """Runs trials one after another; returns the epochs each trained."""
    trained = []
    for curve in curves:
        trial = oracle.create_trial("tuner0")
        epochs = 0
        for epoch, value in enumerate(curve, start=1):
            epochs = epoch
            if epoch == EPOCHS:
                break  # the tuner does not report its last epoch
            reply = oracle.update_trial(
                trial.trial_id,
                {"val_loss": float(value), STEP_KEY: epoch},
                step=epoch,
            )
            if reply.status == "STOPPED":
                break
        oracle.update_trial(
            trial.trial_id, {"val_loss": float(np.min(curve[:epochs]))}
        )
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        trained.append(epochs)
    return trained


def _median_reference(curves):
    """MedianPruner(n_startup_trials=5, n_warmup_steps=2), in NumPy."""
    done, trained = [], []
    for curve in curves:
        epochs = EPOCHS
        for epoch in range(1, EPOCHS):
            if len(done) < 5 or epoch < 2:
                continue
            best = np.min(curve[:epoch])
            median = np.median([c[epoch - 1] for c in done])
            if best > median:
                epochs = epoch
                break
        trained.append(epochs)
        if epochs == EPOCHS:
            done.append(curve)
    return trained


def _asha_reference(curves, eta=3):
    """Successive halving at rungs 1, 3, 9 (min_resource=1), in NumPy."""
    rungs: dict[int, list] = {}
    trained = []
    for curve in curves:
        epochs = EPOCHS
        rung, resource = 0, 1
        for epoch in range(1, EPOCHS):
            if epoch < resource:
                continue
            value = curve[epoch - 1]
            values = rungs.setdefault(rung, []) + [value]
            rungs[rung] = values
            k = max(1, len(values) // eta)  # the best k go on
            if value > sorted(values)[k - 1]:
                epochs = epoch
                break
            rung, resource = rung + 1, resource * eta
        trained.append(epochs)
    return trained


@pytest.mark.parametrize(
    "kind, reference", [("median", _median_reference),
                        ("asha", _asha_reference)]
)
def test_pruning_decisions_match_a_numpy_reference(kind, reference,
                                                   tmp_path):
    curves = _curves(30)
    got = _drive(_oracle(kind, tmp_path), curves)
    assert got == reference(curves)
    assert min(got) < EPOCHS  # something was pruned
    assert got.count(EPOCHS) >= 3  # and some trials trained fully


def test_pruned_trials_are_recorded_and_not_rerun_after_reload(tmp_path):
    curves = _curves(16, seed=3)
    oracle = _oracle("median", tmp_path)
    trained = _drive(oracle, curves[:10])
    pruned = {t for t, e in zip(oracle.end_order, trained) if e < EPOCHS}
    assert pruned
    for trial_id in oracle.end_order:
        trial = oracle.trials[trial_id]
        assert trial.status == "COMPLETED"  # never a failure
        assert trial.metrics.exists("pruned") == (trial_id in pruned)
    # A restarted chief: the study is rebuilt from the saved curves and
    # decides on the remaining trials as the uninterrupted oracle does.
    again = _oracle("median", tmp_path)
    again.reload()
    assert _compat.kt_retry_queue(again) == []
    rest = _drive(again, curves[10:])
    assert trained + rest == _median_reference(curves)
    assert len(again.trials) == 16


def _linear_sgd(lr):
    """A linear regression trained by SGD at `lr`."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(lr), "mse")
    return model


def _epoch_counter(fits):
    """A callback that appends each fit's epoch count to `fits` (through a
    closure: keras-tuner deep-copies the callbacks it is given)."""

    class Count(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            fits.append(0)

        def on_epoch_end(self, epoch, logs=None):
            fits[-1] += 1

    return Count()


def test_search_prunes_slow_learners(tmp_path):
    rng = np.random.RandomState(0)
    x = rng.randn(128, 3).astype("float32")
    y = (x @ np.array([[1.0], [-1.0], [0.5]])).astype("float32")
    seen = []

    def build(hp):
        return _linear_sgd(hp.Choice(
            "lr", [0.05, 0.04, 0.03, 0.02, 0.01, 1e-5, 2e-5, 3e-5]))

    result = search(
        build, x, y, strategy="grid", max_trials=8, epochs=6,
        validation_split=0.25, directory=tmp_path, prune="median",
        verbose=0, callbacks=[_epoch_counter(seen)], seed=0, batch_size=8,
    )
    by_lr = {t["hyperparameters"]["lr"]: t for t in result.trials}
    assert len(result.trials) == 8
    assert {t["status"] for t in result.trials} <= {"completed", "pruned"}
    slow = [by_lr[lr]["status"] for lr in (1e-5, 2e-5, 3e-5)]
    assert slow == ["pruned"] * 3
    assert result.best_trial["status"] == "completed"
    assert min(seen) < 6 and max(seen) == 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prune": "sometimes"}, "prune"),
        ({"prune": "asha", "objective": ["val_loss", "params"],
          "validation_split": 0.5}, "objective"),
    ],
)
def test_bad_prune_arguments_raise_before_any_trial(kwargs, match, tmp_path):
    x = np.zeros((8, 3), "float32")
    y = np.zeros((8, 1), "float32")

    def build(hp):
        raise AssertionError("no trial may run")

    with pytest.raises(ValueError, match=match):
        search(build, x, y, directory=tmp_path, **kwargs)


def test_prune_true_is_diverged():
    from keras_training_kit.tuning._checks import _check_prune

    assert _check_prune(True, "val_loss") == "diverged"
    assert _check_prune(False, "val_loss") is False


def test_tpe_learns_pruned_trials_as_pruned_with_their_curves(tmp_path):
    """TPE is told a pruned trial's learning curve and state PRUNED (it
    ranks those below every completed trial), never its partial score as
    if it were final; the same after a restarted chief rebuilds the
    study."""
    import optuna

    curves = _curves(14, seed=5)
    oracle = _oracle("asha", tmp_path, strategy="tpe")
    trained = _drive(oracle, curves)
    state = optuna.trial.TrialState

    def check(study):
        told = [t for t in study.get_trials(deepcopy=False)
                if t.state in (state.COMPLETE, state.PRUNED)]
        assert len(told) == len(curves)
        for trial, epochs, curve in zip(told, trained, curves):
            if epochs < EPOCHS:
                assert trial.state == state.PRUNED
                expected = {e: float(v) for e, v in
                            enumerate(curve[:epochs], start=1)}
                assert trial.intermediate_values == pytest.approx(expected)
            else:
                assert trial.state == state.COMPLETE
                assert trial.value == pytest.approx(float(np.min(curve)))
    assert EPOCHS > min(trained) and trained.count(EPOCHS) >= 2
    check(oracle._study)
    again = _oracle("asha", tmp_path, strategy="tpe")
    again.reload()
    again.create_trial("tuner0")  # rebuilds the study from the saved trials
    check(again._study)


def test_cross_validated_search_prunes_along_the_folds(tmp_path):
    """With `folds`, a trial's curve runs through its folds in order (step
    `(fold - 1) * epochs + epoch`); a pruned trial skips its other folds,
    is recorded as pruned and scored on the folds it trained."""
    rng = np.random.RandomState(0)
    x = rng.randn(96, 3).astype("float32")
    y = (x @ np.array([[1.0], [-1.0], [0.5]])).astype("float32")
    folds, epochs, fits = 3, 3, []

    def build(hp):
        return _linear_sgd(hp.Choice(
            "lr", [0.05, 0.04, 1e-5, 2e-5, 3e-5, 0.03, 4e-5, 0.02]))

    result = search(
        build, x, y, strategy="grid", max_trials=8, epochs=epochs,
        folds=folds, directory=tmp_path, prune="asha", verbose=0,
        callbacks=[_epoch_counter(fits)], seed=0, batch_size=8,
    )
    by_lr = {t["hyperparameters"]["lr"]: t for t in result.trials}
    assert len(by_lr) == 8
    assert {t["status"] for t in result.trials} <= {"completed", "pruned"}
    # The first trial is alone at every rung: never pruned, all folds.
    assert by_lr[0.05]["status"] == "completed"
    assert fits[:folds] == [epochs] * folds
    # Learning rates too small to learn are pruned at the first rung, in
    # their first fold, and train no other fold.
    for lr in (1e-5, 2e-5, 3e-5, 4e-5):
        assert by_lr[lr]["status"] == "pruned", by_lr[lr]
    assert len(fits) < 8 * folds and min(fits) == 1
    assert result.best_trial["status"] == "completed"


def test_tpe_search_with_asha_prunes_and_finishes(tmp_path):
    """`strategy="tpe", prune="asha"` end to end: the pruner's study and
    TPE's own study live side by side on the oracle."""
    rng = np.random.RandomState(0)
    x = rng.randn(96, 3).astype("float32")
    y = (x @ np.array([[1.0], [-1.0], [0.5]])).astype("float32")

    def build(hp):
        return _linear_sgd(hp.Float("lr", 1e-6, 0.1, sampling="log"))

    result = search(
        build, x, y, strategy="tpe", max_trials=8, epochs=4,
        validation_split=0.25, directory=tmp_path, prune="asha",
        verbose=0, seed=0, batch_size=8,
    )
    statuses = [t["status"] for t in result.trials]
    assert len(statuses) == 8 and set(statuses) <= {"completed", "pruned"}
    assert "pruned" in statuses
    assert result.best_trial["status"] == "completed"
