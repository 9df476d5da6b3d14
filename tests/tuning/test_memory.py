"""Memory stays flat across trials (keras-tuner users report RAM growth)."""

import keras
import numpy as np
import pytest

import keras_tuner as kt  # noqa: F401 - declared: missing fails
import psutil

from keras_training_kit.tuning import search  # noqa: E402

RSS = []


class _RecordRSS(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        RSS.append(psutil.Process().memory_info().rss)


def _build(hp):
    units = hp.Int("units", 1, 256)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(units, "relu"),
         keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1)), "mse")
    return model


@pytest.mark.slow  # 30 trials, ~60 s; `make test-all`
def test_rss_flat_over_30_trials(tmp_path):
    RSS.clear()
    rng = np.random.RandomState(0)
    x = rng.randn(16, 4).astype("float32")
    y = x[:, :1]
    result = search(
        _build, x, y, strategy="random", max_trials=30, epochs=1,
        validation_data=(x[:4], y[:4]), directory=tmp_path, verbose=0,
        seed=0, callbacks=[_RecordRSS()], batch_size=16,
    )
    assert len(result.trials) == 30 and len(RSS) == 30
    growth_mb = (RSS[29] - RSS[4]) / 2**20
    print(f"RSS after trial 5: {RSS[4] / 2**20:.0f} MB, after trial 30: "
          f"{RSS[29] / 2**20:.0f} MB, growth {growth_mb:.1f} MB")
    assert growth_mb < 150
