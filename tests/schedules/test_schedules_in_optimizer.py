"""Schedules inside an optimizer: Keras' step count against PyTorch's.

A Keras optimizer evaluates its schedule at `iterations` before the update
(0 for the first one); a PyTorch scheduler has been stepped as many times
before `optimizer.step()`. Feeding one gradient sequence to Keras' SGD
(under XLA) and to torch's SGD + scheduler must give the same weights.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_training_kit import schedules

STEPS = 25


def torch_factories(torch):
    lr_sched = torch.optim.lr_scheduler
    return {
        "InverseSqrtDecay": (
            schedules.InverseSqrtDecay(0.1, decay_steps=3),
            lambda o: lr_sched.LambdaLR(o, lambda t: 1 / np.sqrt(t / 3 + 1)),
            0.1,
        ),
        "StepDecay": (
            schedules.StepDecay(0.1, factor=0.5, every=4),
            lambda o: lr_sched.StepLR(o, step_size=4, gamma=0.5),
            0.1,
        ),
        "OneCycle": (
            schedules.OneCycle(0.2, STEPS),
            lambda o: lr_sched.OneCycleLR(
                o, max_lr=0.2, total_steps=STEPS, cycle_momentum=False
            ),
            0.2,
        ),
        "CyclicalLearningRate": (
            schedules.CyclicalLearningRate(0.01, 0.2, 3, mode="triangular2"),
            lambda o: lr_sched.CyclicLR(
                o, base_lr=0.01, max_lr=0.2, step_size_up=3,
                mode="triangular2", cycle_momentum=False,
            ),
            0.01,
        ),
    }


def test_sgd_trajectories_match_torch_schedulers():
    import torch  # a declared test dependency: missing must fail
    for name, case in torch_factories(torch).items():
        check_trajectory(torch, name, *case)


def check_trajectory(torch, name, schedule, make_torch_scheduler, torch_lr):
    grads = np.random.default_rng(0).normal(size=(STEPS, 3))

    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    optimizer.build([variable])
    grad = tf.Variable(np.zeros(3, "float32"))

    @tf.function(jit_compile=True)
    def step():
        optimizer.apply_gradients([(grad, variable)])

    param = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    torch_opt = torch.optim.SGD([param], lr=torch_lr)
    torch_sched = make_torch_scheduler(torch_opt)
    for g in grads:
        grad.assign(g.astype("float32"))
        step()
        param.grad = torch.from_numpy(g)
        torch_opt.step()
        torch_sched.step()
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(variable), param.detach().numpy(),
            rtol=1e-5, atol=1e-7, err_msg=name,
        )
    assert int(optimizer.iterations) == STEPS
