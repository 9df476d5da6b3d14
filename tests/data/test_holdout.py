import keras
import numpy as np
import pytest

from keras_training_kit.data import HoldoutReusedError, HoldoutSet


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    return model


def test_evaluate_once_then_refuse():
    rng = np.random.RandomState(0)
    x, y = rng.randn(20, 3).astype("float32"), rng.randn(20, 1)
    test = HoldoutSet(x, y)
    assert not test.used and test.result is None
    model = _model()
    first = test.evaluate(model)
    expected = model.evaluate(x, y, verbose=0, return_dict=True)
    assert first["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert first["mae"] == pytest.approx(
        np.mean(np.abs(model.predict(x, verbose=0) - y)), rel=1e-4
    )
    with pytest.raises(HoldoutReusedError, match="only run on the test set "
                       "once, at the very end"):
        test.evaluate(model)
    assert isinstance(HoldoutReusedError("x"), RuntimeError)
    assert test.used and test.result == first


def test_bad_input():
    with pytest.raises(ValueError, match="same number"):
        HoldoutSet(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        HoldoutSet(np.zeros((0, 1)), np.zeros(0))
