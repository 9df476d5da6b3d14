"""The TensorFlow fast path: each update rule compiled by XLA on its own.

Outside XLA, a `keras.ops` update on the TensorFlow backend runs one kernel
per operation, each reading and writing whole tensors: Keras' Adam makes
about ten passes over memory where the update needs five, and runs about 3x
above the memory-traffic floor. The kit writes every rule once, as a pure
`keras.ops` function (`KitOptimizer._rule`), and on the TensorFlow backend,
when the surrounding train step is *not* compiled by XLA, runs that same
function inside a `tf.function(jit_compile=True)`, so XLA fuses the rule into
one pass even though the model is not compiled. Measured, this beats
TensorFlow's hand-fused `ResourceApplyAdam` / `ResourceApplyRMSProp` kernels
(which would also need extra slots or a different epsilon placement for
RMSProp and Adagrad), and it needs no second copy of the math.

One compiled call updates every variable of the step (like PyTorch's
`foreach` kernels), so a model with many small variables pays one launch,
not one per variable. The variables, slots, gradients, learning rate and step
are arguments, so the trace depends only on shapes and dtypes. It is used
when

- the backend is TensorFlow and the caller is not already compiled by XLA
  (there, and on every other backend, the plain `keras.ops` path runs and
  the caller's compiler fuses it),
- no `tf.distribute` strategy is active (Keras' own distribution code drives
  the plain path),
- every gradient is dense,
- the step updates at least `MIN_TOTAL_SIZE` values: below that the update
  is cheap anyway and the one-off XLA compilation (about half a second per
  optimizer) would cost more than it saves, e.g. in a hyperparameter
  search over small models.

The compiled call has a fixed cost per variable (each variable and slot is a
resource argument of the XLA launch, and its results are new buffers where
TensorFlow's own kernels update in place), so only variables of at least
`KitOptimizer._fuse_min_size` values (2^18) go through it; the others take
the plain path in the same step (`partition`). Measured side by side
(`benchmarks/optimizer_step.py`, 2 cores, no XLA, paired kit/Keras): one
variable of 1M values 0.29-0.66 for every optimizer, on every run; 100
variables of 10k values 0.85 in a fresh process but 1.04-1.22 in the
benchmark's long-running one (6 of 7 optimizers); SGD over 10 variables of
100k values 1.10.

This path is TensorFlow only (`tf.function(jit_compile=True)` has no
counterpart elsewhere); PyTorch has its own fast path (`_foreach_update`),
JAX needs none. `set_compiled_updates(False)` or the environment variable
`KTK_COMPILED_UPDATES=0` turns both fast paths off, e.g. to compare paths.
"""

from __future__ import annotations

import math
import os

import keras

from keras_training_kit import _compat

MIN_TOTAL_SIZE = 1 << 16
_enabled = os.environ.get("KTK_COMPILED_UPDATES", "1") != "0"


FAST_PATH_BACKENDS = ("tensorflow", "torch")


def set_compiled_updates(enabled: bool) -> None:
    """Allows (True, the default) or forbids the kit's fast update paths.

    TensorFlow and PyTorch only: on TensorFlow it governs the XLA-compiled
    update of a train step that is not itself compiled by XLA, on PyTorch
    the multi-tensor `torch._foreach_*` update. `False` forces the plain
    `keras.ops` path (the reference) on every backend. On JAX there is no
    separate path to allow: the jitted train step already fuses the update,
    so `set_compiled_updates(True)` raises `ValueError` there.
    """
    backend = keras.backend.backend()
    if enabled and backend not in FAST_PATH_BACKENDS:
        raise ValueError(
            "Argument `enabled` must be False on the "
            f"{backend!r} backend: the kit's separately compiled update "
            f"paths exist on {FAST_PATH_BACKENDS} only (on {backend!r} the "
            f"compiled train step fuses the update). Received: "
            f"enabled={enabled!r}"
        )
    global _enabled
    _enabled = bool(enabled)


def compiled_updates_enabled() -> bool:
    """Whether the kit's optimizers may take their fast update path.

    Always False on a backend without one (JAX).
    """
    return _enabled and keras.backend.backend() in FAST_PATH_BACKENDS


def _in_xla_context() -> bool:
    try:
        return _compat.in_xla_context()
    except _compat.CompatError:  # TF moved it: the plain path is always
        return True  # right (tests/test_compat.py reports the break)


def usable(grads) -> bool:
    """True when the compiled update may run for these gradients at all:
    TensorFlow outside XLA and `tf.distribute`, dense, static shapes."""
    if not _enabled or keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    if any(None in tuple(g.shape) for g in grads):
        return False
    if tf.distribute.has_strategy():
        return False
    if any(isinstance(g, tf.IndexedSlices) for g in grads):
        return False
    return tf.executing_eagerly() or not _in_xla_context()


def partition(optimizer, grads) -> list:
    """Indices of the variables the compiled call should update.

    Those of at least `optimizer._fuse_min_size` values, when the path is
    `usable` and they hold `MIN_TOTAL_SIZE` values in all; else none. The
    others take the plain path in the same step.
    """
    if not usable(grads):
        return []
    floor = optimizer._fuse_min_size
    sizes = [math.prod(tuple(g.shape)) for g in grads]
    chosen = [i for i, size in enumerate(sizes) if size >= floor]
    if sum(sizes[i] for i in chosen) < MIN_TOTAL_SIZE:
        return []
    return chosen


def apply(optimizer, grads, variables, learning_rate) -> None:
    """Runs `optimizer._rule` for all variables in one XLA-compiled call."""
    import tensorflow as tf

    fn = optimizer.__dict__.get("_ktk_compiled_update")
    if fn is None:

        def update(variables, slots, grads, learning_rate, step):
            for variable, var_slots, gradient in zip(variables, slots, grads):
                optimizer._apply_rule(
                    gradient, variable, var_slots, learning_rate, step
                )

        fn = tf.function(update, jit_compile=True)
        # Bypass the optimizer's attribute tracking: this is not state.
        optimizer.__dict__["_ktk_compiled_update"] = fn

    def tf_var(v):
        return v.value if isinstance(v, keras.Variable) else v

    slots = [
        [tf_var(s) for s in optimizer._slots_of(v)] for v in variables
    ]
    step = keras.ops.cast(optimizer.iterations, "float32")
    learning_rate = tf.convert_to_tensor(tf_var(learning_rate))
    fn([tf_var(v) for v in variables], slots, list(grads), learning_rate, step)
