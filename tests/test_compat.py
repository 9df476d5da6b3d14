"""Canaries for the Keras and TensorFlow privates the kit relies on.

One test per function of the "Keras layers and callbacks" and "TensorFlow"
sections of `keras_training_kit/_compat.py`. Each checks the behaviour the
kit needs, not just that a name exists, and fails with a message naming
the installed Keras / TensorFlow / torch versions, so that an upgrade that
breaks a private API is found here, not in a user's `fit`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_training_kit import _compat


def _says(condition, what):
    assert condition, f"{what}; installed: {_compat.versions()}"


def test_flatten_layers_walks_nested_and_custom_layers():
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = keras.layers.Dense(2, name="hidden_dense")

        def call(self, x):
            return self.inner(x)

    nested = keras.Sequential([keras.Input((3,)), Block(name="block")],
                              name="nested")
    model = keras.Sequential([keras.Input((3,)), nested], name="outer")
    names = [layer.name for layer in _compat.flatten_layers(model)]
    _says(names[:1] == ["outer"] and
          {"nested", "block", "hidden_dense"} <= set(names),
          f"Layer._flatten_layers changed: got {names}")
    top = [layer.name for layer in _compat.flatten_layers(
        model, include_self=False, recursive=False)
        if not isinstance(layer, keras.layers.InputLayer)]
    _says(top == ["nested"], f"non-recursive walk changed: got {top}")


def test_flatten_layers_raises_a_compat_error_naming_versions():
    with pytest.raises(_compat.CompatError, match="keras 3"):
        _compat.flatten_layers(object())


def test_monitor_callback_set_monitor_op_and_is_improvement():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", metrics=["mae"])
    cases = [("val_loss", "auto", 1.0, 2.0, True),
             ("val_loss", "auto", 2.0, 1.0, False),
             ("accuracy", "max", 0.9, 0.8, True),
             ("accuracy", "max", 0.7, 0.8, False),
             ("val_loss", "min", 1.5, 1.4, False)]
    for monitor, mode, value, reference, expected in cases:
        callback = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode,
                                                 min_delta=0.05)
        callback.set_model(model)
        _compat.set_monitor_op(callback)
        _says(callback.monitor_op is not None,
              "MonitorCallback._set_monitor_op no longer sets monitor_op")
        got = _compat.is_improvement(callback, value, reference)
        _says(got is expected,
              f"MonitorCallback._is_improvement({value}, {reference}) in "
              f"mode {mode} gave {got}, expected {expected}")
        _says(_compat.is_improvement(callback, value, None) is True,
              "_is_improvement(x, None) must be True (no best yet)")
    # min_delta: 1.0 vs 1.04 is not an improvement by 0.05 in mode min
    callback = keras.callbacks.EarlyStopping(mode="min", min_delta=0.05)
    callback.set_model(model)
    _compat.set_monitor_op(callback)
    _says(not _compat.is_improvement(callback, 1.0, 1.04),
          "min_delta is no longer applied by _is_improvement")


def test_update_hook_is_called_with_all_gradients_once_per_step():
    calls = []

    class Probe(keras.optimizers.SGD):
        pass

    def hook(optimizer, grads, variables, learning_rate):
        calls.append(len(grads))
        _compat.keras_update_step(optimizer, grads, variables, learning_rate)

    _compat.install_update_hook(Probe, hook)
    w = keras.Variable(np.ones(2, "float32"))
    b = keras.Variable(np.ones(3, "float32"))
    opt = Probe(0.5)
    opt.apply([keras.ops.ones(2), keras.ops.ones(3)], [w, b])
    opt.apply([keras.ops.ones(2), keras.ops.ones(3)], [w, b])
    _says(calls == [2, 2], "Optimizer.apply no longer calls "
          f"{_compat.UPDATE_HOOK} once per step with all gradients: {calls}")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), 0.0)


if keras.backend.backend() == "torch":  # run in the torch matrix leg

    def test_torch_foreach_kernels_do_what_the_kit_needs():
        import torch

        f = _compat.torch_foreach()
        a = [torch.ones(3), torch.full((2,), 4.0)]
        b = [torch.full((3,), 2.0), torch.ones(2)]
        f.addcmul_(a, b, b, value=0.5)  # a + 0.5 b²
        f.lerp_(a, b, 0.25)  # a + 0.25 (b − a)
        f.addcdiv_(a, b, f.sqrt(f.add(a, 0.0)), value=-1.0)
        expected = [np.full(3, 2.75 - 2 / np.sqrt(2.75)),
                    np.full(2, 3.625 - 1 / np.sqrt(3.625))]
        for x, e in zip(a, expected):
            _says(np.allclose(x.numpy(), e), f"torch._foreach_* changed: {x}")


if keras.backend.backend() == "tensorflow":  # TensorFlow private API

    def test_in_xla_context_tells_xla_from_plain_graphs():
        import tensorflow as tf

        seen = {}

        def probe(key):
            seen[key] = _compat.in_xla_context()
            return tf.constant(0.0)

        tf.function(lambda: probe("xla"), jit_compile=True)()
        tf.function(lambda: probe("graph"))()
        probe("eager")
        _says(seen == {"xla": True, "graph": False, "eager": False},
              f"control_flow_util.GraphOrParentsInXlaContext changed: {seen}")


def test_xla_knows_the_fast_compile_option():
    # The canary of `_compat.xla_compile_fast`: XLA must accept the flag
    # itself (the kit's fallback would hide a rename).
    import jax
    import jax.numpy as jnp

    lowered = jax.jit(lambda a: jnp.tanh(a) @ a.T).lower(jnp.ones((4, 3)))
    try:
        compiled = lowered.compile(compiler_options=_compat.XLA_FAST_COMPILE)
    except Exception as error:  # noqa: BLE001
        raise _compat.broken(
            f"XLA's compiler option {_compat.XLA_FAST_COMPILE} "
            f"(jax {jax.__version__})", error) from None
    fast = np.asarray(compiled(jnp.ones((4, 3))))
    np.testing.assert_allclose(fast, np.tanh(np.ones((4, 3))) @ np.ones((3, 4)),
                               rtol=1e-6)
    assert _compat.xla_compile_fast(lowered) is not None


def test_compile_loss_built_follows_fit():
    # The canary of `_compat.compile_loss_built`: False after `compile`,
    # True once `fit` (or any first step) has built the compiled loss.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    _says(_compat.compile_loss_built(model) is False,
          "`Model._compile_loss.built` is not False right after compile")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=1, verbose=0)
    _says(_compat.compile_loss_built(model) is True,
          "`Model._compile_loss.built` is not True after fit")
    bare = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert _compat.compile_loss_built(bare) is True  # nothing to build
