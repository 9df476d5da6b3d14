"""LRFinder: Smith's range test, checked against a NumPy reference."""

import json
import warnings

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

# -- NumPy reference of the docstring ---------------------------------------


def ref_lrs(min_lr, max_lr, steps):
    i = np.arange(steps)
    return min_lr * (max_lr / min_lr) ** (i / (steps - 1))


def ref_smoothed(losses, beta):
    avg, out = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return np.asarray(out)


def ref_stop(smoothed, factor):
    """Number of points recorded before the divergence stop (or all)."""
    for i in range(1, len(smoothed)):
        if smoothed[i] > factor * smoothed[:i].min():
            return i + 1
    return len(smoothed)


def _tiny_model(optimizer=None) -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer or keras.optimizers.SGD(0.01), "mse")
    return model


def _drive(finder, losses, steps_per_epoch, model=None, per_call=1):
    """Feeds per-batch `losses` as Keras does: running means per epoch."""
    model = model or _tiny_model()
    finder.set_model(model)
    model.stop_training = False
    finder.on_train_begin()
    set_lrs, k, epoch = [], 0, 0
    while k < len(losses) and not model.stop_training:
        finder.on_epoch_begin(epoch)
        seen, total = 0, 0.0
        for begin in range(0, steps_per_epoch, per_call):
            if k >= len(losses) or model.stop_training:
                break
            finder.on_train_batch_begin(begin)
            set_lrs.append(float(model.optimizer.learning_rate))
            chunk = losses[k:k + per_call]
            total += sum(chunk)
            seen += len(chunk)
            k += len(chunk)
            # Keras' logs: the mean of the epoch so far, in float32.
            mean = np.float32(total / seen)
            finder.on_train_batch_end(begin + len(chunk) - 1,
                                      {"loss": float(mean)})
        epoch += 1
    finder.on_train_end()
    return model, set_lrs


# -- arguments and config ---------------------------------------------------

INVALID = [
    ({"min_lr": 0.0}, "min_lr"),
    ({"min_lr": -1e-3}, "min_lr"),
    ({"max_lr": 1e-8}, "max_lr"),
    ({"min_lr": 1.0, "max_lr": 1.0}, "max_lr"),
    ({"steps": 0}, "steps"),
    ({"steps": 1}, "steps"),
    ({"steps": 10.5}, "steps"),
    ({"smoothing": 1.0}, "smoothing"),
    ({"smoothing": -0.1}, "smoothing"),
    ({"diverge_factor": 1.0}, "diverge_factor"),
    ({"verbose": "loud"}, "verbose"),
]


def test_invalid_arguments_raise_naming_them():
    for kwargs, name in INVALID:
        with pytest.raises(ValueError, match=f"`{name}`"):
            ktk.callbacks.LRFinder(**kwargs)


def test_config_round_trip_and_json():
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-5, max_lr=3.0, steps=50, smoothing=0.9,
        diverge_factor=5.0, verbose=0,
    )
    config = finder.get_config()
    assert config == {
        "min_lr": 1e-5, "max_lr": 3.0, "steps": 50, "smoothing": 0.9,
        "diverge_factor": 5.0, "verbose": 0,
    }
    assert json.loads(json.dumps(config)) == config
    assert ktk.callbacks.LRFinder.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(finder)
    )
    assert type(revived) is ktk.callbacks.LRFinder
    assert revived.get_config() == config


# -- the sweep on synthetic logs --------------------------------------------


def test_exponential_sweep_matches_geomspace():
    finder = ktk.callbacks.LRFinder(min_lr=1e-6, max_lr=10.0, steps=37)
    lrs = [finder.lr_at(i) for i in range(37)]
    np.testing.assert_allclose(lrs, ref_lrs(1e-6, 10.0, 37), rtol=1e-12)
    np.testing.assert_allclose(lrs, np.geomspace(1e-6, 10.0, 37), rtol=1e-9)


def test_hooks_follow_the_reference_across_epochs():
    rng = np.random.default_rng(0)
    steps = 40
    # A range-test-like curve: flat, falling, then noisy but not exploding.
    losses = list(2.0 - np.linspace(0, 1, steps) ** 2 + rng.normal(0, .05, 40))
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-4, max_lr=1.0, steps=steps, smoothing=0.9, verbose=0
    )
    model, set_lrs = _drive(finder, losses, steps_per_epoch=7)
    h = finder.history
    assert len(h["lr"]) == steps and not finder.diverged
    assert model.stop_training  # stops `fit` itself after `steps` batches
    np.testing.assert_allclose(set_lrs, ref_lrs(1e-4, 1.0, steps), rtol=1e-6)
    np.testing.assert_allclose(h["lr"], ref_lrs(1e-4, 1.0, steps), rtol=1e-12)
    # Per-batch losses recovered from Keras' per-epoch running means.
    np.testing.assert_allclose(h["loss"], losses, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        h["smoothed_loss"], ref_smoothed(h["loss"], 0.9), rtol=1e-10
    )
    # The suggestion: a tenth of the rate at the smoothed minimum.
    low = 3 + int(np.argmin(h["smoothed_loss"][3:]))  # skips 3 points
    assert finder.suggestion == pytest.approx(h["lr"][low] / 10)
    assert finder.suggestions["min_loss_over_10"] == finder.suggestion
    assert 1e-4 <= finder.suggestions["steepest"] <= h["lr"][low]


def test_loss_recovery_with_steps_per_execution():
    losses = [3.0, 2.0, 5.0, 1.0, 4.0, 4.0, 2.0, 0.5]
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-3, max_lr=1.0, steps=4, smoothing=0.5, verbose=0,
        diverge_factor=100.0,
    )
    _drive(finder, losses, steps_per_epoch=4, per_call=2)
    # One point per call: the mean loss of the batches it ran.
    np.testing.assert_allclose(
        finder.history["loss"], [2.5, 3.0, 4.0, 1.25], rtol=1e-6
    )


def test_stops_on_divergence_like_the_reference():
    losses = [2.0, 1.8, 1.5, 1.2, 1.0, 0.9, 1.5, 3, 8, 20, 60, 200, 900]
    losses += [1e4] * 20
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-3, max_lr=10.0, steps=len(losses), smoothing=0.7,
        verbose=0,
    )
    model, _ = _drive(finder, losses, steps_per_epoch=100)
    expected = ref_stop(ref_smoothed(losses, 0.7), 4.0)
    assert finder.diverged and model.stop_training
    assert len(finder.history["lr"]) == expected < len(losses)


def test_nan_loss_counts_as_divergence():
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-3, max_lr=1.0, steps=20, verbose=0
    )
    losses = list(np.linspace(2.0, 1.0, 8)) + [float("nan")] * 12
    _drive(finder, losses, steps_per_epoch=20)
    assert finder.diverged and len(finder.history["lr"]) == 9
    assert finder.suggestion == pytest.approx(finder.lr_at(7) / 10)


def test_too_short_fit_warns():
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-3, max_lr=1.0, steps=50, verbose=0
    )
    with pytest.warns(UserWarning, match="ran 10 of 50"):
        _drive(finder, list(np.linspace(2, 1, 10)), steps_per_epoch=10)
    assert len(finder.history["lr"]) == 10


# -- real range tests ---------------------------------------------------------


def _mlp(optimizer) -> keras.Model:
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _state(model):
    return (
        [w.copy() for w in model.get_weights()],
        [keras.ops.convert_to_numpy(v).copy()
         for v in model.optimizer.variables],
    )


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_digits_suggestion_trains_well_and_state_is_restored(name, digits):
    (x, y), (xv, yv) = digits
    optimizer = (
        keras.optimizers.SGD(0.01, momentum=0.5) if name == "sgd"
        else keras.optimizers.Adam(1e-3)
    )
    model = _mlp(optimizer)
    # One short epoch first: slots, iterations and weights are non-trivial.
    model.fit(x[:256], y[:256], batch_size=32, epochs=1, verbose=0)
    weights, slots = _state(model)
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-6, max_lr=10.0, steps=100, verbose=0
    )
    model.fit(x, y, batch_size=32, epochs=5, callbacks=[finder], verbose=0)

    assert finder.diverged and len(finder.history["lr"]) < 100
    assert 1e-4 < finder.suggestion < 1.0, finder.suggestions
    after_weights, after_slots = _state(model)
    for got, want in zip(after_weights + after_slots, weights + slots):
        np.testing.assert_array_equal(got, want)
    assert float(model.optimizer.learning_rate) == pytest.approx(
        1e-2 if name == "sgd" else 1e-3
    )
    assert int(model.optimizer.iterations) == 8

    model.optimizer.learning_rate = finder.suggestion
    history = model.fit(
        x, y, batch_size=32, epochs=4, validation_data=(xv, yv), verbose=0
    )
    assert history.history["val_accuracy"][-1] > 0.92


def test_unbuilt_optimizer_is_left_as_new_and_plot(digits, tmp_path):
    (x, y), _ = digits
    model = _mlp(keras.optimizers.Adam(1e-3))
    weights = [w.copy() for w in model.get_weights()]
    finder = ktk.callbacks.LRFinder(
        min_lr=1e-3, max_lr=1e4, steps=60, verbose=0
    )
    model.fit(x, y, batch_size=64, epochs=3, callbacks=[finder], verbose=0)
    # A far too high max_lr: the sweep stops long before its end.
    assert finder.diverged and len(finder.history["lr"]) < 60
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    assert int(model.optimizer.iterations) == 0
    for variable in model.optimizer.variables:
        if "learning_rate" in variable.path or "iteration" in variable.path:
            continue
        assert not np.any(keras.ops.convert_to_numpy(variable))
    path = finder.plot(str(tmp_path / "lr.png"))
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_schedule_or_callable_learning_rate_is_refused_before_training(
    digits,
):
    (x, y), _ = digits
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9)
    for rate in (schedule, lambda: 0.01):
        model = _mlp(keras.optimizers.SGD(rate))
        weights = [w.copy() for w in model.get_weights()]
        finder = ktk.callbacks.LRFinder(verbose=0)
        with pytest.raises(ValueError, match="not a schedule"):
            model.fit(x[:64], y[:64], epochs=1, callbacks=[finder],
                      verbose=0)
        for got, want in zip(model.get_weights(), weights):
            np.testing.assert_array_equal(got, want)


def test_plot_needs_a_sweep():
    with pytest.raises(ValueError, match="finished sweep"):
        ktk.callbacks.LRFinder().plot("never.png")


def test_summary_is_printed(capsys):
    finder = ktk.callbacks.LRFinder(min_lr=1e-3, max_lr=1.0, steps=12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _drive(finder, list(np.linspace(2, 1, 12)), steps_per_epoch=5)
    assert not [w for w in caught if "LRFinder" in str(w.message)]
    out = capsys.readouterr().out
    assert "suggested learning rate" in out and "restored" in out
