import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit.schedules import StepDecay


def reference(eta, factor, every, steps):
    """The docstring's formula, literally, in float64."""
    return np.array([eta * factor ** np.floor(t / every) for t in steps])


def test_matches_numpy_reference():
    # n keeps eta * factor**k inside float32's normal range.
    for eta, factor, every, n in [(0.1, 0.5, 10, 1000), (0.3, 0.1, 3, 60),
                                  (1.0, 0.97, 1, 1000), (0.01, 1.5, 7, 500)]:
        steps = np.arange(0, n)
        got = keras.ops.convert_to_numpy(StepDecay(eta, factor, every)(steps))
        np.testing.assert_allclose(
            got, reference(eta, factor, every, steps), rtol=1e-6,
            err_msg=f"eta={eta}, factor={factor}, every={every}",
        )


def test_matches_keras_staircase_exponential_decay():
    # Keras' ExponentialDecay(staircase=True) is the same formula.
    steps = np.arange(0, 100)
    ours = keras.ops.convert_to_numpy(StepDecay(0.2, 0.3, 9)(steps))
    theirs = keras.optimizers.schedules.ExponentialDecay(
        0.2, decay_steps=9, decay_rate=0.3, staircase=True
    )
    expected = [float(theirs(t)) for t in steps]
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_matches_torch_step_lr():
    import torch  # a declared test dependency: missing must fail
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.6)
    expected = []
    for _ in range(40):
        expected.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    ours = keras.ops.convert_to_numpy(StepDecay(0.2, 0.6, 4)(np.arange(40)))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_scalar_step_dtypes_and_jit():
    schedule = StepDecay(0.2, factor=0.5, every=3)
    for dtype in ("int32", "int64", "float32"):
        step = tf.Variable(0, dtype=dtype)
        fn = tf.function(lambda: schedule(step), jit_compile=True)
        for t in (0, 2, 3, 5, 6, 31):
            step.assign(tf.cast(t, dtype))
            assert float(fn()) == pytest.approx(0.2 * 0.5 ** (t // 3),
                                                rel=1e-6), dtype


def test_serialization_round_trip():
    schedule = StepDecay(0.3, factor=0.1, every=5)
    config = schedule.get_config()
    assert config == {"initial_learning_rate": 0.3, "factor": 0.1,
                      "every": 5}
    assert StepDecay.from_config(config).get_config() == config
    blob = json.dumps(keras.saving.serialize_keras_object(schedule))
    restored = keras.saving.deserialize_keras_object(json.loads(blob))
    assert type(restored) is StepDecay
    assert restored.get_config() == config


def test_bad_arguments():
    cases = [
        ({"initial_learning_rate": -1.0}, "initial_learning_rate"),
        ({"initial_learning_rate": 0.1, "factor": 0.0}, "factor"),
        ({"initial_learning_rate": 0.1, "factor": -0.5}, "factor"),
        ({"initial_learning_rate": 0.1, "factor": "half"}, "factor"),
        ({"initial_learning_rate": 0.1, "every": 0}, "every"),
        ({"initial_learning_rate": 0.1, "every": 1.5}, "every"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            StepDecay(**kwargs)
