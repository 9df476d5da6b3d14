"""EarlyStopping: Keras' rule, best weights always, never a NaN epoch."""

import json
import math

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

NAN = float("nan")


def _tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    return model


def _set_epoch_weights(model: keras.Model, epoch: int) -> None:
    # Weights that identify the epoch they were taken at.
    model.set_weights([np.full(w.shape, epoch, w.dtype)
                       for w in model.get_weights()])


def _drive(callback, values, monitor="val_loss", model=None, extra=None,
           nan_weights_at=()):
    """Runs the hooks on synthetic logs, as `fit` would, epoch by epoch."""
    model = model or _tiny_model()
    callback.set_model(model)
    model.stop_training = False
    _set_epoch_weights(model, -1)
    callback.on_train_begin()
    ran = 0
    for epoch, value in enumerate(values):
        _set_epoch_weights(model, epoch)
        if epoch in nan_weights_at:
            model.set_weights([w * NAN for w in model.get_weights()])
        logs = {monitor: value, **((extra or {}).get(epoch, {}))}
        callback.on_epoch_end(epoch, logs)
        ran += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return model, ran


def _weights_epoch(model: keras.Model) -> float:
    values = np.concatenate([w.ravel() for w in model.get_weights()])
    assert np.all(values == values[0])
    return float(values[0])


# -- arguments and config -------------------------------------------------


# One test per group, not per case: every test pays for a Keras session
# reset in conftest.
INVALID = [
    ({"patience": -1}, "patience"),
    ({"patience": 1.5}, "patience"),
    ({"patience": True}, "patience"),
    ({"min_delta": -0.1}, "min_delta"),
    ({"min_delta": NAN}, "min_delta"),
    ({"mode": "maximize"}, "mode"),
    ({"start_from_epoch": -1}, "start_from_epoch"),
    ({"monitor": ""}, "monitor"),
    ({"restore_best_weights": "yes"}, "restore_best_weights"),
    ({"verbose": 5}, "verbose"),
]


def test_invalid_arguments_raise_naming_them():
    for kwargs, name in INVALID:
        with pytest.raises(ValueError, match=f"`{name}`"):
            ktk.callbacks.EarlyStopping(**kwargs)


def test_defaults_follow_the_contract():
    cb = ktk.callbacks.EarlyStopping()
    assert cb.monitor == "val_loss"
    assert cb.patience == 5
    assert cb.restore_best_weights is True
    assert cb.start_from_epoch == 0
    assert isinstance(cb, keras.callbacks.EarlyStopping)


def test_config_round_trip_and_json():
    cb = ktk.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=3, min_delta=0.01, mode="max",
        restore_best_weights=False, start_from_epoch=2, verbose=0,
    )
    config = cb.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = ktk.callbacks.EarlyStopping.from_config(config)
    assert clone.get_config() == config
    # The config stays the argument even after Keras flips min_delta's sign.
    _drive(clone, [1.0, 0.9], monitor="val_accuracy")
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(cb)
    )
    assert type(revived) is ktk.callbacks.EarlyStopping
    assert revived.get_config() == config


# -- Keras' rule, kept ----------------------------------------------------


def test_matches_keras_on_finite_curves():
    """Same stop epoch, best and best epoch as Keras on finite curves."""
    for seed in range(6):
        _compare_with_keras(seed)


def _compare_with_keras(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = list(1.0 / (1 + np.arange(20)) + rng.normal(0, 0.05, 20))
    patience = int(rng.integers(0, 4))
    min_delta = float(rng.choice([0.0, 0.01]))
    ours = ktk.callbacks.EarlyStopping(
        patience=patience, min_delta=min_delta, verbose=0
    )
    theirs = keras.callbacks.EarlyStopping(
        patience=patience, min_delta=min_delta, restore_best_weights=True
    )
    m_ours, ran_ours = _drive(ours, values)
    m_theirs, ran_theirs = _drive(theirs, values)
    assert ran_ours == ran_theirs
    assert ours.stopped_epoch == theirs.stopped_epoch
    assert ours.best == pytest.approx(float(theirs.best))
    assert ours.best_epoch == theirs.best_epoch
    assert _weights_epoch(m_ours) == _weights_epoch(m_theirs)
    # The NumPy reference of the rule: the best is the running minimum
    # over the epochs that ran, improving by more than min_delta.
    best, best_epoch = math.inf, None
    for epoch, x in enumerate(values[:ran_ours]):
        if x < best - min_delta:
            best, best_epoch = x, epoch
    assert ours.best_epoch == best_epoch


def test_stops_after_patience_and_says_why():
    cb = ktk.callbacks.EarlyStopping(patience=2, verbose=0)
    model, ran = _drive(cb, [1.0, 0.8, 0.9, 0.85, 0.7])
    assert ran == 4 and cb.stopped_epoch == 3 and cb.stopped_early
    assert cb.best == pytest.approx(0.8) and cb.best_epoch == 1
    assert _weights_epoch(model) == 1
    assert "Epoch 4: early stopping" in cb.stop_reason
    assert "for 2 epochs" in cb.stop_reason
    assert "val_loss 0.8 at epoch 2" in cb.stop_reason
    assert "Restored the weights of epoch 2" in cb.stop_reason


def test_restores_best_weights_when_training_runs_to_the_end():
    cb = ktk.callbacks.EarlyStopping(patience=5, verbose=0)
    model, ran = _drive(cb, [1.0, 0.5, 0.7, 0.6])
    assert ran == 4 and not cb.stopped_early and cb.stopped_epoch == 0
    assert _weights_epoch(model) == 1
    assert "without early stopping" in cb.stop_reason


def test_restore_best_weights_false_leaves_the_last_weights():
    cb = ktk.callbacks.EarlyStopping(
        patience=5, restore_best_weights=False, verbose=0
    )
    model, _ = _drive(cb, [1.0, 0.5, 0.7])
    assert _weights_epoch(model) == 2
    assert "Restored" not in cb.stop_reason


def test_mode_max_and_min_delta():
    cb = ktk.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=1, min_delta=0.05,
        verbose=0,
    )
    model, ran = _drive(cb, [0.5, 0.7, 0.73, 0.74], monitor="val_accuracy")
    # 0.73 is not 0.05 above 0.7: no improvement, patience 1 -> stop.
    assert ran == 3 and cb.best_epoch == 1
    assert _weights_epoch(model) == 1


def test_start_from_epoch_ignores_the_warm_up():
    cb = ktk.callbacks.EarlyStopping(
        patience=1, start_from_epoch=2, verbose=0
    )
    model, ran = _drive(cb, [0.1, 0.2, 1.0, 0.9, 0.95, 0.97])
    assert cb.best_epoch == 3 and cb.best == pytest.approx(0.9)
    assert ran == 5 and _weights_epoch(model) == 3


# -- NaN / Inf ------------------------------------------------------------


def test_non_finite_monitored_value_stops_at_once():
    for bad in (NAN, float("inf"), -float("inf")):
        _check_stops_at_once(bad)


def _check_stops_at_once(bad: float) -> None:
    cb = ktk.callbacks.EarlyStopping(patience=5, verbose=0)
    model, ran = _drive(cb, [1.0, 0.5, bad, 0.1])
    assert ran == 3 and cb.stopped_epoch == 2
    assert cb.best == pytest.approx(0.5) and cb.best_epoch == 1
    assert _weights_epoch(model) == 1
    assert "diverged" in cb.stop_reason
    # Keras keeps going for `patience` epochs on the same curve.
    keras_cb = keras.callbacks.EarlyStopping(patience=5)
    _, keras_ran = _drive(keras_cb, [1.0, 0.5, bad, 0.1])
    assert keras_ran == 4


def test_nan_first_epoch_is_never_best_and_restores_initial_weights():
    cb = ktk.callbacks.EarlyStopping(patience=3, verbose=0)
    model, ran = _drive(cb, [NAN, 0.5])
    assert ran == 1 and cb.best is None and cb.best_epoch is None
    assert _weights_epoch(model) == -1  # from before training
    assert "before training" in cb.stop_reason
    # Keras records the NaN as its best and the NaN epoch's weights.
    keras_cb = keras.callbacks.EarlyStopping(
        patience=3, restore_best_weights=True
    )
    keras_model, _ = _drive(keras_cb, [NAN, 0.5, 0.4, 0.3, 0.2])
    assert math.isnan(float(keras_cb.best))
    assert _weights_epoch(keras_model) == 0


def test_nan_training_loss_stops_even_when_monitor_is_finite():
    # A diverged classifier still logs a finite accuracy.
    cb = ktk.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=10, verbose=0
    )
    extra = {1: {"loss": 0.5}, 2: {"loss": NAN}}
    model, ran = _drive(
        cb, [0.5, 0.8, 0.1, 0.9], monitor="val_accuracy", extra=extra
    )
    assert ran == 3 and cb.best_epoch == 1
    assert _weights_epoch(model) == 1
    assert "loss=nan" in cb.stop_reason


def test_never_takes_non_finite_weights_as_best():
    cb = ktk.callbacks.EarlyStopping(patience=5, verbose=0)
    model, ran = _drive(cb, [1.0, 0.5, 0.4], nan_weights_at=(2,))
    assert ran == 3 and cb.best_epoch == 1
    assert _weights_epoch(model) == 1
    assert "weights" in cb.stop_reason


def test_verbose_prints_the_reason(capsys):
    cb = ktk.callbacks.EarlyStopping(patience=1, verbose=1)
    _drive(cb, [1.0, 1.1, 1.2])
    out = capsys.readouterr().out
    assert cb.stop_reason and cb.stop_reason in out


def test_reusable_across_fits():
    cb = ktk.callbacks.EarlyStopping(patience=1, verbose=0)
    _drive(cb, [1.0, 1.1, 1.2])
    assert cb.stopped_early
    model, ran = _drive(cb, [3.0, 2.0, 1.0])
    assert ran == 3 and not cb.stopped_early and cb.best_epoch == 2
    assert _weights_epoch(model) == 2


# -- real fits ------------------------------------------------------------


def _mlp(learning_rate: float) -> keras.Model:
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(
        keras.optimizers.SGD(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_fit_ends_with_the_best_epochs_weights(digits):
    (x, y), (xv, yv) = digits
    # Validation labels shuffled: whatever the model learns makes val_loss
    # rise within a few epochs, so the run stops early, quickly.
    x, y, xv = x[:256], y[:256], xv[:128]
    yv = np.random.default_rng(0).permutation(yv[:128])
    model = _mlp(0.1)
    snapshots = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snapshots.append(model.get_weights())
    )
    stop = ktk.callbacks.EarlyStopping(patience=3, verbose=0)
    history = model.fit(
        x, y, validation_data=(xv, yv), epochs=40, batch_size=32,
        callbacks=[recorder, stop], verbose=0,
    )
    val = np.asarray(history.history["val_loss"])
    assert stop.stopped_early and len(val) < 40
    assert stop.best_epoch == int(np.argmin(val)) < len(val) - 1
    for got, want in zip(model.get_weights(), snapshots[stop.best_epoch]):
        np.testing.assert_array_equal(got, want)
    assert model.evaluate(xv, yv, verbose=0) == pytest.approx(
        val.min(), rel=1e-4
    )


def test_fit_that_diverges_stops_and_keeps_finite_weights(digits):
    (x, y), (xv, yv) = digits
    model = _mlp(0.05)
    blow_up = keras.callbacks.LambdaCallback(
        # From the third epoch on the rate is absurd: the loss explodes.
        on_epoch_begin=lambda e, logs: setattr(
            model.optimizer, "learning_rate", 0.05 if e < 2 else 1e6
        )
    )
    stop = ktk.callbacks.EarlyStopping(patience=20, verbose=0)
    history = model.fit(
        x, y, validation_data=(xv, yv), epochs=30, batch_size=64,
        callbacks=[blow_up, keras.callbacks.TerminateOnNaN(), stop],
        verbose=0,
    )
    losses = history.history["loss"]
    assert len(losses) <= 4 and not np.isfinite(losses[-1])
    assert stop.stopped_early and "diverged" in stop.stop_reason
    assert stop.best_epoch is not None and stop.best_epoch < 2
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    assert model.evaluate(xv, yv, verbose=0) == pytest.approx(
        history.history["val_loss"][stop.best_epoch], rel=1e-4
    )
