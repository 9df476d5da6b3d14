"""The one home of other libraries' private APIs.

Every access the kit makes to a private name of Keras, TensorFlow or
keras-tuner goes through a function here, and each function has a canary
test (`tests/test_compat*.py`) that fails with a message naming the
installed version when an upgrade removes or changes what it relies on.
Everything else in the kit uses public API only.
"""

from __future__ import annotations

from typing import Any

import keras


class CompatError(RuntimeError):
    """A private API the kit relies on is missing in this installed version."""


def versions() -> str:
    """The installed versions of the libraries whose privates are used."""
    parts = [f"keras {keras.__version__}"]
    for name in ("tensorflow", "keras_tuner"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        parts.append(f"{name} {getattr(module, '__version__', '?')}")
    return ", ".join(parts)


def broken(what: str, error: Exception | None = None) -> CompatError:
    """The error raised when a private API is missing: names the versions."""
    why = f" ({type(error).__name__}: {error})" if error else ""
    return CompatError(
        f"keras_training_kit relies on {what}, which this installation "
        f"lacks{why}; installed: {versions()}. Please report it."
    )


# ---------------------------------------------------------------------------
# Keras layers and callbacks (section owned by the backends work).


def flatten_layers(layer: Any, include_self: bool = True,
                   recursive: bool = True) -> list:
    """Every tracked sublayer of any Keras layer (`Layer._flatten_layers`).

    Keras 3 has no public "all sublayers" accessor for a generic layer
    (`Model.layers` lists only the top level); this is what `Layer.losses`
    itself walks.
    """
    try:
        walk = layer._flatten_layers
    except AttributeError as error:
        raise broken("keras.layers.Layer._flatten_layers", error) from None
    return list(walk(include_self=include_self, recursive=recursive))


def set_monitor_op(callback: Any) -> None:
    """`MonitorCallback._set_monitor_op`: picks `monitor_op` from the mode.

    For `mode="auto"` it reads the direction of the model's metrics, so it
    runs once those are built (Keras calls it at the first epoch end).
    """
    try:
        setup = callback._set_monitor_op
    except AttributeError as error:
        raise broken("keras.callbacks.MonitorCallback._set_monitor_op",
                     error) from None
    setup()


def is_improvement(callback: Any, value: float, reference: Any) -> bool:
    """`MonitorCallback._is_improvement`: `value` beats `reference`."""
    try:
        compare = callback._is_improvement
    except AttributeError as error:
        raise broken("keras.callbacks.MonitorCallback._is_improvement",
                     error) from None
    return bool(compare(value, reference))


# The optimizer hook every backend's `Optimizer.apply` calls with the whole
# list of (already clipped, scaled, accumulated) gradients: Keras' own torch
# optimizers override it for their `torch._foreach_*` updates.
UPDATE_HOOK = "_backend_update_step"


def install_update_hook(cls: type, function: Any) -> None:
    """Makes `function` the `_backend_update_step` of optimizer class `cls`.

    `function(optimizer, grads, trainable_variables, learning_rate)`; it
    calls `keras_update_step` for Keras' default behaviour.
    """
    base = keras.optimizers.Optimizer
    if not callable(getattr(base, UPDATE_HOOK, None)):
        raise broken(f"keras.optimizers.Optimizer.{UPDATE_HOOK}")
    setattr(cls, UPDATE_HOOK, function)


def keras_update_step(optimizer: Any, grads: list, variables: list,
                      learning_rate: Any) -> None:
    """Keras' own `_backend_update_step` (one `update_step` per variable)."""
    hook = getattr(keras.optimizers.Optimizer, UPDATE_HOOK)
    hook(optimizer, grads, variables, learning_rate)


# PyTorch's multi-tensor kernels (`torch._foreach_*`, private to torch but
# what `torch.optim` and Keras' torch optimizers run on).
FOREACH_OPS = ("add_", "sub_", "mul_", "mul", "add", "addcmul_", "sqrt",
               "sqrt_", "lerp_", "maximum_", "addcdiv_")


def torch_foreach() -> Any:
    """A namespace of the `torch._foreach_*` kernels the kit uses.

    `torch_foreach().mul_(tensors, scalar)` is `torch._foreach_mul_`.
    """
    import types

    import torch

    names = {}
    for op in FOREACH_OPS:
        fn = getattr(torch, f"_foreach_{op}", None)
        if fn is None:
            raise CompatError(
                f"keras_training_kit relies on torch._foreach_{op}, which "
                f"torch {torch.__version__} lacks; installed: {versions()}. "
                "Please report it."
            )
        names[op] = fn
    return types.SimpleNamespace(**names)


# ---------------------------------------------------------------------------
# Keras fit internals used by the diagnosis (section owned by diagnosis).


def fit_locals() -> dict | None:
    """The local variables of the running `Model.fit` (its data, its
    callbacks), or None outside `fit`.

    Keras 3 hands callbacks neither the training data nor the other
    callbacks; every backend's `fit` keeps them in locals (`x`, `y`,
    `callbacks`, and `epoch_iterator` whose `data_adapter` can yield a batch
    without disturbing training). Found by walking up the call stack from
    a callback hook.
    """
    import inspect

    frame = inspect.currentframe()
    try:
        while frame is not None:
            it = frame.f_locals.get("epoch_iterator")
            if (
                frame.f_code.co_name == "fit"
                and it is not None
                and hasattr(it, "data_adapter")
            ):
                return dict(frame.f_locals)
            frame = frame.f_back
    finally:
        del frame
    return None


def fit_callbacks(locals_: dict | None) -> list:
    """The user's callbacks of the running `fit` (a `CallbackList`'s
    `callbacks`), from `fit_locals()`."""
    if not locals_:
        return []
    cbs = locals_.get("callbacks")
    return list(getattr(cbs, "callbacks", cbs) or [])


def compile_loss_built(model: Any) -> bool:
    """Whether the model's compiled loss (`Trainer._compile_loss`, a
    `CompileLoss`) has built its state, or the model has no compiled loss.

    `fit` builds it symbolically before `on_train_begin`
    (`Trainer._symbolic_build`); a probe run before any training must build
    it first, outside its compiled pass. Keras has no public accessor.
    """
    try:
        loss = model._compile_loss
    except AttributeError as error:
        raise broken("keras.Model._compile_loss", error) from None
    return loss is None or bool(getattr(loss, "built", False))


def adapter_batches(adapter: Any, size: int) -> list:
    """Up to `size` examples of a Keras data adapter, as a list of batches,
    without consuming a Python generator (Keras' generator adapter keeps
    the batches it peeked at in `_first_batches`)."""
    batches = getattr(adapter, "_first_batches", None)
    if batches:
        return list(batches)
    py_dataset = getattr(adapter, "py_dataset", None)
    if py_dataset is not None:
        return [py_dataset[0]]
    if type(adapter).__name__ == "GeneratorDataAdapter":
        return []  # never iterate a user's generator
    out, count = [], 0
    for batch in adapter.get_numpy_iterator():
        out.append(batch)
        x = keras.utils.unpack_x_y_sample_weight(
            batch if isinstance(batch, tuple) else (batch,)
        )[0]
        count += len(keras.tree.flatten(x)[0])
        if count >= size:
            break
    return out


# ---------------------------------------------------------------------------
# TensorFlow (section owned by the backends work).


def in_xla_context() -> bool:
    """Whether TensorFlow code being traced now will be compiled by XLA.

    `control_flow_util.GraphOrParentsInXlaContext` of the default graph:
    True inside `tf.function(jit_compile=True)` (and inside functions it
    calls), False eagerly and in a plain `tf.function`.
    """
    import tensorflow as tf

    try:
        from tensorflow.python.ops import control_flow_util

        check = control_flow_util.GraphOrParentsInXlaContext
    except (ImportError, AttributeError) as error:
        raise broken("tensorflow.python.ops.control_flow_util."
                     "GraphOrParentsInXlaContext", error) from None
    return bool(check(tf.compat.v1.get_default_graph()))


# ---------------------------------------------------------------------------
# JAX / XLA.

# XLA's DebugOptions field for the LLVM optimization level of the CPU/GPU
# backend (xla/xla.proto: `xla_backend_optimization_level`, default 3).
XLA_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def xla_compile_fast(lowered: Any) -> Any:
    """`lowered.compile()` at XLA's lowest backend optimization level.

    For code run rarely (the diagnosis probe, twice per epoch), where the
    compile time is the cost: about half on CPU. Falls back to the default
    options when this XLA does not know the flag (then `fast_compile_ok`
    in `tests/test_compat.py` fails and says so).
    """
    try:
        return lowered.compile(compiler_options=XLA_FAST_COMPILE)
    except Exception:  # noqa: BLE001 (an XLA without the debug option)
        return lowered.compile()


# ---------------------------------------------------------------------------
# keras-tuner (section owned by the tuning work).
# Every keras-tuner private the kit touches, checked against keras-tuner
# 1.4.8 by `tests/test_compat_tuner.py`. Imported lazily: keras-tuner is
# only loaded by `ktk.tuning`.


def _kt_attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError as e:
        raise broken(f"keras-tuner's `{type(obj).__name__}.{name}`", e)


def kt_retry_queue(oracle: Any) -> list:
    """`Oracle._retry_queue`: trial ids waiting to be run again (mutable)."""
    return _kt_attr(oracle, "_retry_queue")


def kt_set_retry_queue(oracle: Any, trial_ids: list) -> None:
    """Replaces `Oracle._retry_queue`."""
    _kt_attr(oracle, "_retry_queue")
    oracle._retry_queue = list(trial_ids)


def kt_duplicate(oracle: Any, values: dict) -> bool:
    """`Oracle._duplicate(values)`: whether these values were tried."""
    return _kt_attr(oracle, "_duplicate")(values)


def kt_random_values(oracle: Any) -> dict | None:
    """`Oracle._random_values()`: new random values, None when exhausted."""
    return _kt_attr(oracle, "_random_values")()


def kt_max_collisions(oracle: Any) -> int:
    """`Oracle._max_collisions`: repeats tolerated before "exhausted"."""
    return int(_kt_attr(oracle, "_max_collisions"))


def kt_set_project_dir(oracle: Any, directory: str, name: str) -> None:
    """`Oracle._set_project_dir`: where a standalone oracle saves."""
    _kt_attr(oracle, "_set_project_dir")(directory, name)


def kt_grid_order(oracle: Any) -> list[str]:
    """`GridSearchOracle._ordered_ids` (a `LinkedList`) as a list."""
    memory = _kt_attr(oracle, "_ordered_ids")
    nexts, items = _kt_attr(memory, "_next_index"), _kt_attr(memory, "_memory")
    ids, index = [], nexts[None]
    while index is not None:
        ids.append(items[index])
        index = nexts[index]
    return ids


def kt_set_grid_order(oracle: Any, trial_ids: list[str]) -> None:
    """Rebuilds `GridSearchOracle._ordered_ids` from a list."""
    linked = type(_kt_attr(oracle, "_ordered_ids"))()
    previous = None
    for trial_id in trial_ids:
        linked.insert(trial_id, previous)
        previous = trial_id
    oracle._ordered_ids = linked


def kt_grid_populate_next(oracle: Any) -> list:
    """`GridSearchOracle._populate_next` (mutable list of trial ids)."""
    return _kt_attr(oracle, "_populate_next")


def kt_set_grid_populate_next(oracle: Any, trial_ids: list) -> None:
    _kt_attr(oracle, "_populate_next")
    oracle._populate_next = list(trial_ids)


def kt_grid_compare(oracle: Any, a: dict, b: dict) -> int:
    """`GridSearchOracle._compare(a, b)`: the grid order of two values."""
    return _kt_attr(oracle, "_compare")(a, b)


def kt_try_build(tuner: Any, hp: Any) -> Any:
    """`Tuner._try_build(hp)`: clear the session, build, check the size."""
    return _kt_attr(tuner, "_try_build")(hp)


def kt_checkpoint_fname(tuner: Any, trial_id: str) -> str:
    """`Tuner._get_checkpoint_fname`: the weights file `load_model` reads."""
    return _kt_attr(tuner, "_get_checkpoint_fname")(trial_id)


def kt_build_config_fname(tuner: Any, trial_id: str) -> str:
    """`Tuner._get_build_config_fname`: the build config `load_model` reads."""
    return _kt_attr(tuner, "_get_build_config_fname")(trial_id)


def kt_chief_parts() -> tuple[Any, Any]:
    """keras-tuner's gRPC pieces: `(protos, oracle_chief)` modules."""
    try:
        from keras_tuner.src import protos
        from keras_tuner.src.distribute import oracle_chief
    except ImportError as e:
        raise broken("keras_tuner.src.protos / distribute.oracle_chief", e)
    for obj, name in (
        (protos, "get_service_grpc"),
        (oracle_chief, "OracleServicer"),
        (oracle_chief, "exit_chief"),
        (oracle_chief, "start_server"),
    ):
        _kt_attr(obj, name)
    return protos, oracle_chief


def kt_patch_start_server(serve: Any) -> None:
    """Makes keras-tuner's chief call `serve(oracle)` as its server.

    `BaseTuner.__init__` calls `oracle_chief.start_server(oracle)` (looked
    up on the module at call time) on the chief.
    """
    _, oracle_chief = kt_chief_parts()
    oracle_chief.start_server = serve
