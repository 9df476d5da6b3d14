import keras
import numpy as np
import pytest

from keras_training_kit.data import cross_validate

BUILDS = []


def _build():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    # Eager: tiny data, tracing would cost more than the training.
    model.compile(
        keras.optimizers.SGD(0.05), "mse", metrics=["mae"], run_eagerly=True
    )
    BUILDS.append(model)
    return model


def _data(n=30):
    rng = np.random.RandomState(0)
    x = rng.randn(n, 2).astype("float32")
    y = (x @ np.array([[1.0], [-2.0]]) + 0.5).astype("float32")
    return x, y


def test_each_sample_validated_once_fresh_models_and_scores(capsys):
    BUILDS.clear()
    x, y = _data()
    cv = cross_validate(
        _build, x, y, folds=3, seed=0, verbose=1, epochs=1, batch_size=8
    )
    assert "3/3" in capsys.readouterr().out  # the progress bar over folds
    assert len(cv.scores) == len(cv.histories) == len(cv.splits) == 3
    val = np.concatenate([va for _, va in cv.splits])
    np.testing.assert_array_equal(np.sort(val), np.arange(30))
    for train, va in cv.splits:
        assert not set(train) & set(va)
        assert len(train) + len(va) == 30
    # A fresh model per fold: three different objects, three builds.
    assert len(BUILDS) == 3 and len({id(m) for m in BUILDS}) == 3
    # Scores are the last epoch's validation metrics; mean/std over folds.
    for score, history in zip(cv.scores, cv.histories):
        assert score["val_loss"] == history.history["val_loss"][-1]
        assert set(score) == {"val_loss", "val_mae"}
    losses = [s["val_loss"] for s in cv.scores]
    assert cv.mean["val_loss"] == pytest.approx(np.mean(losses))
    assert cv.std["val_loss"] == pytest.approx(np.std(losses))
    # The last fold's val_loss is the MSE of its model on its own fold.
    _, va = cv.splits[-1]
    pred = BUILDS[-1].predict(x[va], verbose=0)
    assert cv.scores[-1]["val_loss"] == pytest.approx(
        np.mean((pred - y[va]) ** 2), rel=1e-4
    )


def test_stratified_folds_and_quiet(capsys):
    x = np.zeros((40, 2), "float32")
    y = np.array([0] * 30 + [1] * 10)

    def build():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
        model.compile(
            "sgd",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            run_eagerly=True,
        )
        return model

    cv = cross_validate(
        build, x, y, folds=2, stratify=True, seed=0, verbose=0, epochs=1
    )
    for _, va in cv.splits:
        assert y[va].sum() == 5
    assert capsys.readouterr().out == ""


def test_bad_input_before_training():
    x, y = _data(10)
    calls = []

    def build():
        calls.append(1)
        return _build()

    with pytest.raises(ValueError, match="folds"):
        cross_validate(build, x, y, folds=1)
    with pytest.raises(ValueError, match="folds"):
        cross_validate(build, x, y, folds=11)
    with pytest.raises(ValueError, match="same number"):
        cross_validate(build, x, y[:5])
    with pytest.raises(ValueError, match="empty"):
        cross_validate(build, x[:0], y[:0])
    with pytest.raises(ValueError, match="validation"):
        cross_validate(build, x, y, validation_split=0.2)
    assert not calls

    def uncompiled():
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    with pytest.raises(ValueError, match="compiled"):
        cross_validate(uncompiled, x, y, folds=2, verbose=0)
