"""ktk.optimizers: the course's update rules as Keras optimizers.

`SGD`, `Momentum` (movement and moving-average forms, Nesterov), `Adagrad`,
`RMSProp` (with the slide's `σ⁰ = g⁰` start) and `Adam` (Algorithm 1, with
AMSGrad). Each is a `keras.optimizers.Optimizer`: use it in `compile`.

Backends: the same `keras.ops` rule (the reference) on all three. TensorFlow
without XLA runs it as one XLA-compiled call per step (TensorFlow only;
`tf.distribute` strategies take the plain path); PyTorch runs the same
formula as multi-tensor `torch._foreach_*` kernels; JAX (and TensorFlow
with `jit_compile=True`) compiles the rule into the train step, traced
once. `set_compiled_updates(False)` forces the plain rule everywhere.
"""

from keras_training_kit.optimizers._compiled_update import (
    compiled_updates_enabled,
    set_compiled_updates,
)
from keras_training_kit.optimizers.adagrad import Adagrad
from keras_training_kit.optimizers.adam import Adam
from keras_training_kit.optimizers.momentum import Momentum
from keras_training_kit.optimizers.rmsprop import RMSProp
from keras_training_kit.optimizers.sgd import SGD

__all__ = [
    "SGD",
    "Momentum",
    "Adagrad",
    "RMSProp",
    "Adam",
    "set_compiled_updates",
    "compiled_updates_enabled",
]
