"""The PyTorch fast path: each update rule as multi-tensor kernels.

On the PyTorch backend Keras runs its nine built-in optimizers through
`torch._foreach_*` kernels, which update a whole list of tensors per
launch; a custom optimizer (ours included) falls back to one chain of
`keras.ops` calls per variable, each a separate kernel launch and memory
pass. Here every kit rule has the same multi-tensor form, written from the
same formula as its `keras.ops` `_rule`, which stays the reference (both
pass the same trajectory tests, against NumPy and `torch.optim`).

The step-dependent scalars (learning rate, bias corrections) are computed
on the host in float64 from the learning rate and `iterations` (as
`torch.optim` and Keras' torch optimizers do with their `alpha=`), so each
kernel is one fused pass: Adam makes 5 passes over memory instead of the
~10 of a chain of elementwise ops.

It is used when the backend is PyTorch, `set_compiled_updates` allows fast
paths, every gradient is a dense tensor, and the optimizer's `_rule` is the
kit's own (a subclass that overrides `_rule` gets the plain path: its math
is not the one written here).
"""

from __future__ import annotations

import math

import keras

from keras_training_kit import _compat
from keras_training_kit.optimizers import _compiled_update

# class (the one defining `_rule`) name -> multi-tensor implementation
_RULES = {}


def _implements(name):
    def decorate(fn):
        _RULES[name] = fn
        return fn

    return decorate


def _rule_owner(cls):
    """The class in `cls`'s MRO that defines `_rule` (or one of its two
    halves, `_slot_increments` and `_step`)."""
    for klass in cls.__mro__:
        if {"_rule", "_slot_increments", "_step"} & set(vars(klass)):
            return klass
    return None


def usable(optimizer, grads) -> bool:
    """True when the multi-tensor update should run for these gradients."""
    if (
        keras.backend.backend() != "torch"
        or not _compiled_update.compiled_updates_enabled()
    ):
        return False
    if _rule_of(type(optimizer)) is None:
        return False
    return all(g is not None and not g.is_sparse for g in grads)


_OWNER_CACHE = {}


def _rule_of(cls):
    """The foreach implementation of `cls`'s `_rule`, or None (cached)."""
    if cls not in _OWNER_CACHE:
        owner = _rule_owner(cls)
        ok = owner is not None and owner.__module__.startswith(
            "keras_training_kit."
        )
        _OWNER_CACHE[cls] = _RULES.get(owner.__qualname__) if ok else None
    return _OWNER_CACHE[cls]


_FOREACH = []


def _kernels():
    if not _FOREACH:
        _FOREACH.append(_compat.torch_foreach())
    return _FOREACH[0]


def _scalar(value) -> float:
    """A Python number of a 0-d tensor or Keras variable (one `.item()`)."""
    if isinstance(value, keras.Variable):
        value = value.value
    return value.item() if hasattr(value, "item") else float(value)


def _groups(optimizer, variables):
    """[(weights, [slot lists])] per (dtype, device), cached per variable list.

    The torch tensors behind Keras variables are assigned in place, so the
    lists stay valid for as long as the optimizer updates these variables.
    """
    key = tuple(id(v) for v in variables)
    cache = optimizer.__dict__.setdefault("_ktk_foreach_groups", {})
    if key not in cache:
        groups = {}  # one list per (dtype, device), as torch.optim does
        for i, v in enumerate(variables):
            w = v.value
            slots = [s.value for s in optimizer._slots_of(v)]
            group = groups.setdefault(
                (w.dtype, w.device), ([], [], [[] for _ in slots])
            )
            group[0].append(i)
            group[1].append(w)
            for column, slot in zip(group[2], slots):
                column.append(slot)
        cache.clear()  # one live variable list per optimizer
        cache[key] = list(groups.values())
    return cache[key]


def apply(optimizer, grads, variables, learning_rate) -> None:
    """Runs the rule of `optimizer` for all variables with foreach kernels."""
    import torch

    rule = _rule_of(type(optimizer))
    f = _kernels()
    lr = _scalar(learning_rate)
    step = int(_scalar(optimizer.iterations))
    with torch.no_grad():
        for indices, w, slots in _groups(optimizer, variables):
            g = [grads[i] if grads[i].dtype == w[j].dtype
                 else grads[i].to(w[j].dtype)
                 for j, i in enumerate(indices)]
            rule(optimizer, f, g, w, slots, lr, step)


def _correction(beta: float, step: int) -> float:
    """`1 − βᵗ` with t = step + 1, in float64 (see adam._bias_correction)."""
    if beta == 0.0:
        return 1.0
    return -math.expm1((step + 1) * math.log(beta))


def _nonzero_(denominators, epsilon) -> None:
    """Zeros of the denominators made infinite when `epsilon` is 0 (a
    weight whose gradients have all been 0 takes no step; as the rule's
    `KitOptimizer._nonzero`)."""
    if not epsilon:
        for d in denominators:
            d.masked_fill_(d == 0, math.inf)


@_implements("SGD")
def _sgd(opt, f, g, w, slots, lr, step):
    # w ← w − ηg
    f.add_(w, g, alpha=-lr)


@_implements("Momentum")
def _momentum(opt, f, g, w, slots, lr, step):
    (velocity,) = slots
    beta = opt.momentum
    if not opt.ema:
        # v ← βv − ηg; w ← w + v (Nesterov: w ← w + βv − ηg)
        f.mul_(velocity, beta)
        f.add_(velocity, g, alpha=-lr)
        if opt.nesterov:
            f.add_(w, velocity, alpha=beta)
            f.add_(w, g, alpha=-lr)
        else:
            f.add_(w, velocity)
        return
    # The slot holds u = v / (1 − β): u ← βu + g; w ← w − η(1 − β)u
    # (Nesterov: w ← w − η(1 − β)(βu + g)).
    f.mul_(velocity, beta)
    f.add_(velocity, g)
    scale = lr * (1.0 - beta)
    if opt.nesterov:
        f.add_(w, velocity, alpha=-scale * beta)
        f.add_(w, g, alpha=-scale)
    else:
        f.add_(w, velocity, alpha=-scale)


@_implements("Adagrad")
def _adagrad(opt, f, g, w, slots, lr, step):
    # The slot holds Σg² + initial value + ε: s ← s + g²; w ← w − ηg/√s
    (accumulator,) = slots
    f.addcmul_(accumulator, g, g)
    denominator = f.sqrt(accumulator)
    _nonzero_(denominator, opt.initial_accumulator_value + opt.epsilon)
    f.addcdiv_(w, g, denominator, value=-lr)


@_implements("RMSProp")
def _rmsprop(opt, f, g, w, slots, lr, step):
    # s ← ρs + (1 − ρ)g² (s ← g² at the first step when
    # init_with_first_gradient); w ← w − ηg/√(s + ε)
    (s,) = slots
    if opt.init_with_first_gradient and step == 0:
        f.mul_(s, 0.0)
        f.addcmul_(s, g, g)
    else:
        f.mul_(s, opt.rho)
        f.addcmul_(s, g, g, value=1.0 - opt.rho)
    denominator = f.add(s, opt.epsilon)
    f.sqrt_(denominator)
    _nonzero_(denominator, opt.epsilon)
    f.addcdiv_(w, g, denominator, value=-lr)


@_implements("Adam")
def _adam(opt, f, g, w, slots, lr, step):
    # m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; with cᵢ = 1 − βᵢᵗ,
    # w ← w − η m̂/(√v̂ + ε) = w − (η√c₂/c₁) m/(√v + ε√c₂)
    m, v = slots[:2]
    c1 = _correction(opt.beta_1, step)
    c2 = _correction(opt.beta_2, step)
    f.lerp_(m, g, 1.0 - opt.beta_1)  # one pass for β₁m + (1 − β₁)g
    f.mul_(v, opt.beta_2)
    f.addcmul_(v, g, g, value=1.0 - opt.beta_2)
    if opt.amsgrad:
        # v̂max ← max(v̂max, v/c₂); w ← w − (η/c₁) m/(√v̂max + ε)
        v_hat_max = slots[2]
        f.maximum_(v_hat_max, f.mul(v, 1.0 / c2))
        denominator = f.sqrt(v_hat_max)
        _nonzero_(denominator, opt.epsilon)
        f.add_(denominator, opt.epsilon)
        f.addcdiv_(w, m, denominator, value=-lr / c1)
        return
    sqrt_c2 = math.sqrt(c2)
    denominator = f.sqrt(v)
    _nonzero_(denominator, opt.epsilon)
    f.add_(denominator, opt.epsilon * sqrt_c2)
    f.addcdiv_(w, m, denominator, value=-lr * sqrt_c2 / c1)
