import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit.schedules import InverseSqrtDecay


def reference(eta, decay_steps, steps):
    """The docstring's formula, literally, in float64."""
    return np.array([eta / np.sqrt(t / decay_steps + 1) for t in steps])


def test_matches_numpy_reference():
    steps = np.arange(0, 1000)
    for eta, decay_steps in [(0.1, 1), (0.3, 7), (2.0, 100)]:
        schedule = InverseSqrtDecay(eta, decay_steps=decay_steps)
        got = keras.ops.convert_to_numpy(schedule(steps))
        np.testing.assert_allclose(
            got, reference(eta, decay_steps, steps), rtol=1e-6,
            err_msg=f"eta={eta}, decay_steps={decay_steps}",
        )


def test_course_formula_with_unit_decay_steps():
    # The slide's η^t = η / √(t+1).
    schedule = InverseSqrtDecay(0.5)
    for t in (0, 1, 3, 8, 99):
        assert float(schedule(t)) == pytest.approx(0.5 / np.sqrt(t + 1),
                                                   rel=1e-6)


def test_scalar_step_dtypes_and_jit():
    schedule = InverseSqrtDecay(0.2, decay_steps=3)
    for dtype in ("int32", "int64", "float32"):
        step = tf.Variable(0, dtype=dtype)
        fn = tf.function(lambda: schedule(step), jit_compile=True)
        for t in (0, 5, 17):
            step.assign(tf.cast(t, dtype))
            assert float(fn()) == pytest.approx(0.2 / np.sqrt(t / 3 + 1),
                                                rel=1e-6), dtype


def test_serialization_round_trip():
    schedule = InverseSqrtDecay(0.3, decay_steps=5)
    config = schedule.get_config()
    assert config == {"initial_learning_rate": 0.3, "decay_steps": 5}
    assert InverseSqrtDecay.from_config(config).get_config() == config
    blob = json.dumps(keras.saving.serialize_keras_object(schedule))
    restored = keras.saving.deserialize_keras_object(json.loads(blob))
    assert type(restored) is InverseSqrtDecay
    assert restored.get_config() == config


def test_bad_arguments():
    cases = [
        ({"initial_learning_rate": -0.1}, "initial_learning_rate"),
        ({"initial_learning_rate": float("nan")}, "initial_learning_rate"),
        ({"initial_learning_rate": 0.1, "decay_steps": 0}, "decay_steps"),
        ({"initial_learning_rate": 0.1, "decay_steps": 2.5}, "decay_steps"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            InverseSqrtDecay(**kwargs)
