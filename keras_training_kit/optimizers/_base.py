"""Plumbing shared by the kit's optimizers (not public)."""

from __future__ import annotations

import keras
from keras import ops

from keras_training_kit import _compat
from keras_training_kit import _validation as v
from keras_training_kit.optimizers import _compiled_update, _foreach_update

BASE_ARGS_DOC = """weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
            ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name: the keyword arguments of
            `keras.optimizers.Optimizer`, with Keras' meaning."""


class KitOptimizer(keras.optimizers.Optimizer):
    """Base of the kit's optimizers.

    A subclass declares its slots in `build` (stored, one list per slot, in
    `self._slot_lists`) and writes its update as a pure function
    `_rule(gradient, variable, slots, learning_rate, step)` in `keras.ops`,
    returning the update `u` (the new value is `variable - u`, assigned in
    place as Keras' built-ins do; `variable + u` when the optimizer's
    `_rule_adds` is true, which spares a negation when the rule's natural
    result is the step itself, as momentum's velocity) and the new slot
    values. A rule whose slots grow by an increment (Adam's moments,
    RMSProp's average, Adagrad's sum) writes two pure halves instead,
    `_slot_increments(gradient, slots, learning_rate, step)` and
    `_step(gradient, variable, new_slots, learning_rate, step)`, and the
    base `_rule` is their composition; the increments are then added in
    place (`assign_add`, as Keras' Adam does), which on TensorFlow outside
    XLA costs less than assigning a new value (measured over 100 variables
    of 10k values: Adam 0.84-0.94x Keras instead of 1.08-1.26x). `update_step`
    runs the rule and assigns the results (any backend, and inside XLA);
    on TensorFlow outside XLA the optimizer's `_backend_update_step`
    instead runs the same rule for all variables in one XLA-compiled call
    (`_compiled_update`; variables smaller than the class's
    `_fuse_min_size` stay on the plain path), and on PyTorch the same
    formula as multi-tensor `torch._foreach_*` kernels (`_foreach_update`).
    The `keras.ops` rule is the reference every path is tested against.
    """

    # Variables below this many values skip the compiled TF update: there
    # the call's per-variable cost outweighs what fusing saves (measured in
    # `_compiled_update`'s docstring). A subclass may lower it.
    _fuse_min_size = 1 << 18
    # True when `_rule` returns the step to add (`variable + u`).
    _rule_adds = False

    def __init__(self, learning_rate, name=None, **kwargs):
        v.check_learning_rate(learning_rate)
        # Keras checks how these combine, not their ranges.
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if kwargs.get(key) is not None:
                v.check_positive(key, kwargs[key])
        if kwargs.get("weight_decay") is not None:
            v.check_non_negative("weight_decay", kwargs["weight_decay"])
        if "use_ema" in kwargs:
            v.check_choice("use_ema", kwargs["use_ema"], (True, False))
        if isinstance(learning_rate, int) and not isinstance(
            learning_rate, bool
        ):
            learning_rate = float(learning_rate)  # Keras wants a float
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._slot_lists = []

    def _add_slots(self, var_list, names, initializers=None):
        """Adds one slot per name for each variable."""
        names = list(names)
        for i, name in enumerate(names):
            init = "zeros" if initializers is None else initializers[i]
            self._slot_lists.append(
                self.add_optimizer_variables(var_list, name, initializer=init)
            )

    def _rule(self, gradient, variable, slots, learning_rate, step):
        """`(update, new_slots)`; here the composition of the two halves."""
        increments = self._slot_increments(
            gradient, slots, learning_rate, step
        )
        new = tuple(slot + inc for slot, inc in zip(slots, increments))
        return self._step(gradient, variable, new, learning_rate, step), new

    def _slot_increments(self, gradient, slots, learning_rate, step):
        """What each slot grows by (a rule written in two halves)."""
        raise NotImplementedError

    def _step(self, gradient, variable, slots, learning_rate, step):
        """The update `u` from the new slots (a rule in two halves)."""
        raise NotImplementedError

    @staticmethod
    def _nonzero(denominator, epsilon):
        """`denominator`, with its zeros made infinite when `epsilon` is 0.

        With `epsilon=0` a variable whose gradients have all been 0 (a dead
        unit) would divide 0 by 0; its true step is 0, which `x / inf`
        gives. With `epsilon > 0` (a Python float) nothing is added.
        """
        if epsilon:
            return denominator
        denominator = ops.convert_to_tensor(denominator)  # a slot, maybe
        return ops.where(denominator > 0, denominator, float("inf"))

    @classmethod
    def _adds_slots(cls) -> bool:
        """Whether the rule is the two halves (not a `_rule` of its own)."""
        return cls._rule is KitOptimizer._rule

    def _slots_of(self, variable):
        index = self._get_variable_index(variable)
        return [slot_list[index] for slot_list in self._slot_lists]

    def _apply_rule(self, gradient, variable, slots, learning_rate, step):
        """Runs `_rule` for one variable and assigns its results.

        The one place both paths go through: `update_step` (plain path) and
        the XLA-compiled call of `_compiled_update`, which passes the slots
        explicitly so that its trace depends only on shapes and dtypes.
        """
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        learning_rate = ops.cast(learning_rate, dtype)
        if self._adds_slots():
            increments = self._slot_increments(
                gradient, slots, learning_rate, step
            )
            for slot, inc in zip(slots, increments):
                self.assign_add(slot, inc)
            # The slots are read again after their increments (TensorFlow
            # orders the reads after the writes; JAX's stateless scope and
            # PyTorch return the new values).
            update = self._step(gradient, variable, slots, learning_rate, step)
        else:
            update, new_slots = self._rule(
                gradient, variable, slots, learning_rate, step
            )
            for slot, value in zip(slots, new_slots):
                self.assign(slot, value)
        # In place, as Keras' built-ins: outside XLA, TensorFlow then runs
        # one kernel (AssignSub/AssignAdd) instead of a read, a subtraction
        # and an assignment.
        if self._rule_adds:
            self.assign_add(variable, update)
        else:
            self.assign_sub(variable, update)

    def _per_step(self, key, compute):
        """`compute()`, once per step of the plain loop (`_plain_loop`).

        For values that depend only on the step, the learning rate and the
        dtype (the update count, Adam's bias corrections): outside XLA each
        scalar operation is a TensorFlow kernel, and computing them once
        instead of once per variable saves several kernels per variable.
        Outside `_plain_loop` (the compiled TF call) and under
        `tf.distribute` it simply calls `compute`.
        """
        memo = self.__dict__.get("_ktk_memo")
        if memo is None:
            return compute()
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def update_step(self, gradient, variable, learning_rate):
        """Applies `_rule` to one variable and its slots (plain path)."""
        step = self._per_step(  # the 0-based update count
            "step", lambda: ops.cast(self.iterations, "float32")
        )
        self._apply_rule(
            gradient, variable, self._slots_of(variable), learning_rate, step
        )


def _fast_update_step(optimizer, grads, trainable_variables, learning_rate):
    """The optimizer's `_backend_update_step` (installed via `_compat`).

    TensorFlow outside XLA: one XLA-compiled call for the variables worth
    fusing (`_compiled_update.partition`), the plain loop for the rest;
    PyTorch: multi-tensor `torch._foreach_*` kernels (`_foreach_update`);
    everywhere else (JAX, XLA, `tf.distribute`, sparse gradients) Keras'
    own loop over `update_step` (`_plain_loop`).
    """
    fused = _compiled_update.partition(optimizer, grads)
    if fused:
        _compiled_update.apply(
            optimizer,
            [grads[i] for i in fused],
            [trainable_variables[i] for i in fused],
            learning_rate,
        )
        chosen = set(fused)
        rest = [i for i in range(len(grads)) if i not in chosen]
        if rest:
            _plain_loop(
                optimizer,
                [grads[i] for i in rest],
                [trainable_variables[i] for i in rest],
                learning_rate,
            )
    elif _foreach_update.usable(optimizer, grads):
        _foreach_update.apply(
            optimizer, grads, trainable_variables, learning_rate
        )
    else:
        _plain_loop(optimizer, grads, trainable_variables, learning_rate)


def _plain_loop(optimizer, grads, variables, learning_rate):
    """Keras' own loop over `update_step`, per-step values computed once.

    Outside XLA, TensorFlow runs each operation of the step as its own
    kernel, about 5-10 us each: computing the update count (and Adam's
    corrections) once per step through `KitOptimizer._per_step` instead of
    once per variable saves kernels on every variable (SGD over 100 small
    variables spent a third of its time on them). Not under
    `tf.distribute`, whose merge call runs `update_step` in a
    cross-replica context that must not capture a replica's tensor.
    """
    shared = True
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        shared = not tf.distribute.has_strategy()
    if shared:
        optimizer.__dict__["_ktk_memo"] = {}
    try:
        _compat.keras_update_step(
            optimizer, grads, variables, learning_rate
        )
    finally:
        optimizer.__dict__.pop("_ktk_memo", None)


_compat.install_update_hook(KitOptimizer, _fast_update_step)


def with_base_args(cls: type) -> type:
    """Fills `{{base_args}}` in the docstring (absent under `python -OO`)."""
    if cls.__doc__:
        cls.__doc__ = cls.__doc__.replace("{{base_args}}", BASE_ARGS_DOC)
    return cls
