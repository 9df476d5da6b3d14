"""CrossValidationTuner: a keras-tuner Tuner scoring trials by k-fold CV."""

import keras
import numpy as np
import pytest

import keras_tuner as kt

from keras_training_kit.tuning import CrossValidationTuner, search  # noqa

FOLDS = []  # (learning rate, validation size, val_loss per epoch) per fold


class _Record(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        lr = float(self.model.optimizer.learning_rate)
        FOLDS.append([float(f"{lr:.3g}"), []])

    def on_epoch_end(self, epoch, logs=None):
        FOLDS[-1][1].append(logs["val_loss"])


def _data(n=30):
    rng = np.random.RandomState(0)
    x = rng.randn(n, 2).astype("float32")
    return x, (x @ np.array([[1.0], [-1.0]])).astype("float32")


def _build(hp):
    lr = hp.Choice("learning_rate", [0.05, 0.01])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(lr), "mse")
    return model


def test_trial_score_is_mean_over_folds_of_best_epoch(tmp_path):
    FOLDS.clear()
    x, y = _data()
    oracle = kt.oracles.GridSearchOracle(objective="val_loss", max_trials=2)
    tuner = CrossValidationTuner(
        oracle=oracle, hypermodel=_build, folds=2, directory=tmp_path,
        verbose=0,
    )
    tuner.search(x, y, epochs=2, batch_size=5, verbose=0,
                 callbacks=[_Record()])
    assert len(FOLDS) == 4  # 2 trials x 2 folds, each a fresh fit
    for trial in oracle.trials.values():
        lr = trial.hyperparameters.values["learning_rate"]
        best = [min(v) for r, v in FOLDS if r == lr]
        assert len(best) == 2
        assert trial.score == pytest.approx(np.mean(best), rel=1e-6)
        std = trial.metrics.get_last_value("val_loss_std")
        assert std == pytest.approx(np.std(best), rel=1e-5)
    # Usable as a normal tuner: the best model loads from its checkpoint.
    model = tuner.get_best_models(1)[0]
    assert model.predict(x[:2], verbose=0).shape == (2, 1)


def test_search_with_folds_uses_cv_tuner(tmp_path):
    FOLDS.clear()
    x, y = _data()
    result = search(
        _build, x, y, strategy="random", folds=2, max_trials=1, epochs=1,
        directory=tmp_path, verbose=0, callbacks=[_Record()],
    )
    assert isinstance(result.tuner, CrossValidationTuner)
    assert len(FOLDS) == 2
    assert result.best_score == pytest.approx(
        np.mean([v[0] for _, v in FOLDS]), rel=1e-6
    )


def test_bad_folds():
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=1)
    with pytest.raises(ValueError, match="folds"):
        CrossValidationTuner(oracle=oracle, hypermodel=_build, folds=1)
