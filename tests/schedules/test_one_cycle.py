import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit.schedules import OneCycle


def reference(max_lr, total, pct_start=0.3, div_factor=25.0,
              final_div_factor=1e4, anneal="cos", three_phase=False):
    """The docstring's phases and annealing, literally, in float64."""
    initial = max_lr / div_factor
    minimum = initial / final_div_factor
    if three_phase:
        phases = [(pct_start * total - 1, initial, max_lr),
                  (2 * pct_start * total - 2, max_lr, initial),
                  (total - 1, initial, minimum)]
    else:
        phases = [(pct_start * total - 1, initial, max_lr),
                  (total - 1, max_lr, minimum)]
    rates = []
    for t in range(total):
        start_step = 0.0
        for i, (end_step, lo, hi) in enumerate(phases):
            if t <= end_step or i == len(phases) - 1:
                pct = (t - start_step) / (end_step - start_step)
                if anneal == "cos":
                    rates.append(hi + (lo - hi) * (1 + math.cos(math.pi * pct))
                                 / 2)
                else:
                    rates.append(lo + (hi - lo) * pct)
                break
            start_step = end_step
    return np.array(rates)


def torch_rates(total, kwargs):
    import torch  # a declared test dependency: missing must fail
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, total_steps=total, cycle_momentum=False, **kwargs
    )
    rates = []
    for _ in range(total):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return np.array(rates)


CASES = [
    # (max_lr, total_steps, torch-named kwargs)
    (0.1, 100, {}),
    (0.05, 37, {"pct_start": 0.25, "anneal_strategy": "linear"}),
    (1.0, 50, {"pct_start": 0.4, "div_factor": 10.0,
               "final_div_factor": 100.0}),
    (0.3, 60, {"three_phase": True}),
    (0.3, 41, {"three_phase": True, "anneal_strategy": "linear",
               "pct_start": 0.45}),
    (0.2, 25, {"pct_start": 0.3}),  # warm-up ends between two steps
    (0.2, 3, {"pct_start": 0.3}),  # warm-up shorter than one step
]


def ours(max_lr, total, kwargs):
    return OneCycle(max_lr, total, **kwargs)


def test_matches_numpy_reference_and_torch():
    for max_lr, total, kwargs in CASES:
        case = f"max_lr={max_lr}, total_steps={total}, {kwargs}"
        schedule = ours(max_lr, total, kwargs)
        got = keras.ops.convert_to_numpy(schedule(np.arange(total)))
        np.testing.assert_allclose(
            got, reference(max_lr, total, **_ref_kwargs(kwargs)), rtol=1e-6,
            err_msg=case,
        )
        np.testing.assert_allclose(
            got, torch_rates(total, {"max_lr": max_lr, **kwargs}), rtol=1e-6,
            err_msg=case,
        )


def _ref_kwargs(kwargs):
    out = dict(kwargs)
    if "anneal_strategy" in out:
        out["anneal"] = out.pop("anneal_strategy")
    return out


def test_curve_shape():
    schedule = OneCycle(0.1, 100)
    rates = keras.ops.convert_to_numpy(schedule(np.arange(100)))
    peak = int(np.argmax(rates))
    assert peak == 29  # pct_start * total_steps - 1
    assert rates[0] == pytest.approx(0.1 / 25, rel=1e-6)
    assert rates[peak] == pytest.approx(0.1, rel=1e-6)
    assert rates[-1] == pytest.approx(0.1 / 25 / 1e4, rel=1e-6)
    assert np.all(np.diff(rates[: peak + 1]) > 0)
    assert np.all(np.diff(rates[peak:]) < 0)


def test_stays_at_final_rate_after_the_cycle():
    schedule = OneCycle(0.1, 20, anneal_strategy="linear")
    rates = keras.ops.convert_to_numpy(schedule(np.arange(19, 60)))
    np.testing.assert_allclose(rates, 0.1 / 25 / 1e4, rtol=1e-6)


def test_scalar_step_dtypes_and_jit():
    schedule = OneCycle(0.1, 30, three_phase=True)
    expected = reference(0.1, 30, three_phase=True)
    for dtype in ("int64", "float32"):
        step = tf.Variable(0, dtype=dtype)
        fn = tf.function(lambda: schedule(step), jit_compile=True)
        for t in (0, 4, 8, 9, 17, 29):
            step.assign(tf.cast(t, dtype))
            assert float(fn()) == pytest.approx(expected[t], rel=1e-6), dtype


def test_serialization_round_trip():
    schedule = OneCycle(0.2, 77, pct_start=0.2, div_factor=10.0,
                        final_div_factor=50.0, anneal_strategy="linear",
                        three_phase=True)
    config = schedule.get_config()
    assert config == {
        "max_learning_rate": 0.2, "total_steps": 77, "pct_start": 0.2,
        "div_factor": 10.0, "final_div_factor": 50.0,
        "anneal_strategy": "linear", "three_phase": True,
    }
    assert OneCycle.from_config(config).get_config() == config
    blob = json.dumps(keras.saving.serialize_keras_object(schedule))
    restored = keras.saving.deserialize_keras_object(json.loads(blob))
    assert type(restored) is OneCycle
    assert restored.get_config() == config


def test_bad_arguments():
    cases = [
        ({"max_learning_rate": -0.1}, "max_learning_rate"),
        ({"total_steps": 0}, "total_steps"),
        ({"total_steps": 10.0}, "total_steps"),
        ({"pct_start": 1.5}, "pct_start"),
        ({"pct_start": -0.1}, "pct_start"),
        ({"pct_start": 0.6, "three_phase": True}, "pct_start"),
        ({"div_factor": 0.0}, "div_factor"),
        ({"final_div_factor": -1.0}, "final_div_factor"),
        ({"anneal_strategy": "cosine"}, "anneal_strategy"),
        ({"three_phase": "yes"}, "three_phase"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            OneCycle(**{"max_learning_rate": 0.1, "total_steps": 10,
                        **kwargs})
