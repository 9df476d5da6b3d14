"""Canaries for the Keras `fit` internals the diagnosis relies on (the
"Keras fit internals" section of `keras_training_kit/_compat.py`).

Each checks the behaviour `TrainingDiagnosis` needs during a real `fit`,
and fails with a message naming the installed versions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit import _compat


def _says(condition, what):
    assert condition, f"{what}; installed: {_compat.versions()}"


class Spy(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.locals = _compat.fit_locals()
        self.callbacks = _compat.fit_callbacks(self.locals)
        it = (self.locals or {}).get("epoch_iterator")
        self.batches = _compat.adapter_batches(it.data_adapter, 40) if it \
            else None


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    return model


x = np.arange(60, dtype="float32").reshape(20, 3)
y = np.ones((20, 2), "float32")


@pytest.mark.parametrize("source", ["numpy", "tf.data", "generator",
                                    "py_dataset"])
def test_fit_locals_hold_the_data_and_the_callbacks(source):
    spy, other = Spy(), keras.callbacks.History()
    kw = {"epochs": 1, "verbose": 0, "callbacks": [spy, other]}
    if source == "numpy":
        _model().fit(x, y, batch_size=8, **kw)
    elif source == "tf.data":
        _model().fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
                     **kw)
    elif source == "generator":
        def gen():
            while True:
                yield x[:8], y[:8]
        _model().fit(gen(), steps_per_epoch=3, **kw)
    else:
        class Data(keras.utils.PyDataset):
            def __len__(self):
                return 2

            def __getitem__(self, i):
                return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

        _model().fit(Data(), **kw)
    _says(spy.locals is not None,
          "Model.fit no longer keeps `epoch_iterator` in its locals")
    _says(other in spy.callbacks and spy in spy.callbacks,
          "fit's `callbacks` local is no longer the user's CallbackList")
    _says(spy.batches, f"no batch from the {source} data adapter")
    first = spy.batches[0]
    _says(np.asarray(first[0]).shape[-1] == 3,
          f"unexpected batch structure from the {source} adapter")
    if source == "numpy":
        _says(spy.locals.get("x") is x, "fit's `x` local is not the input")


def test_outside_fit_there_are_no_fit_locals():
    assert _compat.fit_locals() is None
    assert _compat.fit_callbacks(None) == []
