import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit.schedules import CyclicalLearningRate


def reference(low, high, step_size, steps, mode="triangular", gamma=1.0):
    """TensorFlow Addons' formulas (the docstring's), in float64."""
    rates = []
    for t in steps:
        cycle = math.floor(1 + t / (2 * step_size))
        x = abs(t / step_size - 2 * cycle + 1)
        scale = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1),
                 "exp_range": gamma ** t}[mode]
        rates.append(low + (high - low) * max(0.0, 1 - x) * scale)
    return np.array(rates)


def torch_rates(n, **kwargs):
    import torch  # a declared test dependency: missing must fail
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.CyclicLR(
        opt, cycle_momentum=False, **kwargs
    )
    rates = []
    for _ in range(n):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return np.array(rates)


CASES = [
    (1e-3, 0.1, 5, "triangular", 1.0),
    (1e-4, 0.01, 7, "triangular2", 1.0),
    (0.01, 0.2, 4, "exp_range", 0.993),
    (0.05, 0.01, 3, "triangular", 1.0),  # an upside-down cycle
]


def test_matches_numpy_reference_and_torch():
    n = 200
    for low, high, step_size, mode, gamma in CASES:
        case = f"{low}, {high}, step_size={step_size}, {mode}, gamma={gamma}"
        schedule = CyclicalLearningRate(low, high, step_size, mode=mode,
                                        gamma=gamma)
        got = keras.ops.convert_to_numpy(schedule(np.arange(n)))
        np.testing.assert_allclose(
            got, reference(low, high, step_size, range(n), mode, gamma),
            rtol=1e-6, err_msg=case,
        )
        expected = torch_rates(n, base_lr=low, max_lr=high,
                               step_size_up=step_size, mode=mode, gamma=gamma)
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=case)


def test_exp_range_stays_accurate_over_long_runs():
    # gamma ** step with a float32 gamma alone would drift by ~1e-4 here.
    steps = np.arange(0, 20000, 7)
    schedule = CyclicalLearningRate(1e-3, 1e-1, 50, mode="exp_range",
                                    gamma=0.99987)
    got = keras.ops.convert_to_numpy(schedule(steps))
    expected = reference(1e-3, 1e-1, 50, steps, "exp_range", 0.99987)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@keras.saving.register_keras_serializable(package="ktk_tests")
def cube_root_decay(x):
    return 1.0 / keras.ops.power(x + 1.0, 1.0 / 3.0)


def test_custom_scale_fn_matches_torch():
    for scale_mode in ("cycle", "iterations"):
        schedule = CyclicalLearningRate(0.01, 0.1, 6, scale_fn=cube_root_decay,
                                        scale_mode=scale_mode)
        got = keras.ops.convert_to_numpy(schedule(np.arange(80)))
        expected = torch_rates(80, base_lr=0.01, max_lr=0.1, step_size_up=6,
                               scale_fn=lambda x: 1.0 / (x + 1) ** (1 / 3),
                               scale_mode=scale_mode)
        np.testing.assert_allclose(got, expected, rtol=1e-6,
                                   err_msg=scale_mode)


def test_scalar_step_dtypes_and_jit():
    schedule = CyclicalLearningRate(1e-3, 0.1, 5, mode="triangular2")
    expected = reference(1e-3, 0.1, 5, range(40), "triangular2")
    for dtype in ("int64", "float32"):
        step = tf.Variable(0, dtype=dtype)
        fn = tf.function(lambda: schedule(step), jit_compile=True)
        for t in (0, 3, 5, 10, 14, 21, 39):
            step.assign(tf.cast(t, dtype))
            assert float(fn()) == pytest.approx(expected[t], rel=1e-6), dtype


def test_serialization_round_trip():
    schedule = CyclicalLearningRate(1e-3, 0.1, 20, mode="exp_range",
                                    gamma=0.999)
    config = schedule.get_config()
    assert config == {
        "initial_learning_rate": 1e-3, "maximal_learning_rate": 0.1,
        "step_size": 20, "mode": "exp_range", "gamma": 0.999,
        "scale_fn": None, "scale_mode": "cycle",
    }
    assert CyclicalLearningRate.from_config(config).get_config() == config
    blob = json.dumps(keras.saving.serialize_keras_object(schedule))
    restored = keras.saving.deserialize_keras_object(json.loads(blob))
    assert type(restored) is CyclicalLearningRate
    assert restored.get_config() == config


def test_serialization_keeps_a_registered_scale_fn():
    schedule = CyclicalLearningRate(0.01, 0.1, 6, scale_fn=cube_root_decay)
    blob = json.dumps(keras.saving.serialize_keras_object(schedule))
    restored = keras.saving.deserialize_keras_object(json.loads(blob))
    assert restored.scale_fn is cube_root_decay
    steps = np.arange(30)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(steps)),
        keras.ops.convert_to_numpy(schedule(steps)),
    )


def test_bad_arguments():
    base = {"initial_learning_rate": 0.01, "maximal_learning_rate": 0.1,
            "step_size": 4}
    cases = [
        ({"initial_learning_rate": -0.01}, "initial_learning_rate"),
        ({"maximal_learning_rate": -1.0}, "maximal_learning_rate"),
        ({"step_size": 0}, "step_size"),
        ({"mode": "triangle"}, "mode"),
        ({"gamma": 0.0}, "gamma"),
        ({"scale_fn": 3}, "scale_fn"),
        ({"scale_mode": "epochs"}, "scale_mode"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            CyclicalLearningRate(**{**base, **kwargs})
