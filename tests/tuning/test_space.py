"""training_space: the course's knobs on one keras-tuner call."""

import math

import keras
import numpy as np
import pytest

import keras_tuner as kt

from keras_training_kit.tuning import (  # noqa: E402
    make_optimizer,
    search,
    training_space,
)


def test_defaults_declare_every_knob():
    hp = kt.HyperParameters()
    values = training_space(hp)
    assert set(values) == {
        "optimizer", "learning_rate", "batch_size", "dropout", "l2",
        "batch_norm", "activation", "depth", "width",
    }
    space = {p.name: p for p in hp.space}
    assert set(space) == set(values)
    assert space["learning_rate"].sampling == "log"
    assert isinstance(space["batch_norm"], kt.engine.hyperparameters.Boolean)
    assert set(space["optimizer"].values) == {
        "sgd", "momentum", "adagrad", "rmsprop", "adam"
    }
    assert values == {k: hp.values[k] for k in values}


def test_overrides_range_choice_fixed_and_absent():
    hp = kt.HyperParameters()
    values = training_space(
        hp, learning_rate=(1e-3, 1e-1), width=[8, 16], activation="tanh",
        depth=None, optimizer=["sgd"],
    )
    space = {p.name: p for p in hp.space}
    assert "depth" not in values and "depth" not in space
    assert values["activation"] == "tanh"
    assert isinstance(space["activation"], kt.engine.hyperparameters.Fixed)
    assert list(space["width"].values) == [8, 16]
    lr = space["learning_rate"]
    assert (lr.min_value, lr.max_value, lr.sampling) == (1e-3, 1e-1, "log")
    # Random draws stay in range, spread over decades (log scale).
    draws = [lr.random_sample(s) for s in range(200)]
    assert all(1e-3 <= d <= 1e-1 for d in draws)
    assert np.mean([d < 1e-2 for d in draws]) == pytest.approx(0.5, abs=0.12)


def test_bad_choices():
    with pytest.raises(ValueError, match="Unknown knobs"):
        training_space(kt.HyperParameters(), momentum=[0.9])
    with pytest.raises(ValueError, match="optimizer"):
        training_space(kt.HyperParameters(), optimizer=["adamw"])
    with pytest.raises(ValueError, match="width"):
        training_space(kt.HyperParameters(), width=[])


@pytest.mark.parametrize(
    "name", ["sgd", "momentum", "adagrad", "rmsprop", "adam"]
)
def test_make_optimizer(name):
    from keras_training_kit import optimizers as kit

    opt = make_optimizer(name, 0.03)
    assert isinstance(opt, keras.optimizers.Optimizer)
    assert float(opt.learning_rate) == pytest.approx(0.03)
    kit_cls = {
        "sgd": "SGD", "momentum": "Momentum", "adagrad": "Adagrad",
        "rmsprop": "RMSProp", "adam": "Adam",
    }[name]
    if hasattr(kit, kit_cls):  # the kit's optimizer wins when it exists
        assert type(opt) is getattr(kit, kit_cls)
    elif name == "momentum":
        assert float(opt.momentum) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="name"):
        make_optimizer("lbfgs")


STEPS = []


class _CountSteps(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        STEPS.append(0)

    def on_train_batch_end(self, batch, logs=None):
        STEPS[-1] += 1


def test_batch_size_is_honoured_by_fit(tmp_path):
    STEPS.clear()
    rng = np.random.RandomState(0)
    x = rng.randn(40, 3).astype("float32")
    y = x[:, :1]

    def build(hp):
        c = training_space(
            hp, batch_size=[4, 10], optimizer="sgd", learning_rate=0.01,
            dropout=None, l2=None, batch_norm=None, activation=None,
            depth=None, width=None,
        )
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(make_optimizer(c["optimizer"], c["learning_rate"]),
                      "mse")
        return model

    result = search(
        build, x, y, strategy="grid", max_trials=2, epochs=1,
        validation_split=0.25, directory=tmp_path, verbose=0,
        batch_size=999, callbacks=[_CountSteps()],  # hp wins over fit's
    )
    sizes = [t["hyperparameters"]["batch_size"] for t in result.trials]
    assert sorted(sizes) == [4, 10]
    # 30 training samples (validation_split=0.25): ceil(30 / batch_size).
    assert STEPS == [math.ceil(30 / b) for b in sizes]
