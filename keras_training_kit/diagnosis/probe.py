"""`Probe`: gradient, activation and weight statistics on one fixed batch.

The measuring half of `TrainingDiagnosis`, on TensorFlow (`tf.GradientTape`
in a `tf.function`), JAX (`jax.jit` of `jax.value_and_grad`) and PyTorch
(autograd), over one pass written once in `keras.ops` inside a
`keras.StatelessScope` (what `stateless_call`/`stateless_compute_loss` do).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_training_kit import _compat
from keras_training_kit import _validation as v
from keras_training_kit.diagnosis._probe_ops import (
    _KINDS,
    _SATURATION,
    _count,
    _graph_io,
    _numpy,
    _recurrent,
    _rms,
    _to_tensor,
    activation_name,
)


class Probe:
    """Gradient, activation and weight statistics of a model on one batch.

    One forward and backward pass of the compiled loss (`compute_loss` as
    in `fit`, regularization losses included), in inference mode, on
    TensorFlow, JAX and PyTorch, compiled once per `Probe` and run in a
    `keras.StatelessScope`: weights, optimizer, batch-norm statistics,
    metrics and RNG state are left as they were. For each kernel `W`
    (weight path minus `/kernel`, forward order) with gradient `g`, and
    each monitored activation `a` (hidden layers ending in relu,
    leaky_relu, elu, sigmoid or tanh; never the output layer) flattened to
    `(entries, units)` along its last axis (conv: channels):

    ```
    grad_rms = sqrt(mean(g ** 2))         weight_rms = sqrt(mean(W ** 2))
    dead = mean_u(all_i(a[i, u] <= 0))    active_fraction = mean(a > 0)
    saturated = mean(a < 0.01 or a > 0.99) (sigmoid), mean(|a| > 0.99) (tanh)
    ```

    `dead` and `active_fraction` are for relu only (leaky_relu and elu have
    kind "relu" for the NaN/Inf counts). Under mixed precision the loss is
    scaled by the optimizer's loss scale; statistics are float32.

    Args:
        model: a `keras.Model`, built or built by the first batch.
            Activations need a Sequential or functional model; a subclassed
            model gets gradient and weight statistics only (see `notes`).
        gradients: whether to run the backward pass. Defaults to `True`.
        activations: whether to monitor activations. Defaults to `True`.

    Attributes: `layers` (one name per kernel), `monitored` (`(layer name,
    kind)`, kind in "relu", "sigmoid", "tanh"), `activation_names` (the
    exact activation per monitored layer), `units` (last axis per monitored
    layer), `notes` (what could not be measured, and why), `traces` (times
    the pass was traced: 1 on TF/JAX for same-shaped batches, 0 on torch).
    On JAX the pass is compiled at XLA's lowest backend optimization level:
    it runs twice per epoch, so compiling it fast (about half the time on
    CPU) matters more than a millisecond per call.

    `probe(x, y, sample_weight=None)` returns `{"loss", "grad_rms",
    "weight_rms"` (lists per kernel), `"grad_nonfinite"`, `"weight_nonfinite",
    "dead", "active_fraction", "saturated", "act_nonfinite"` (dicts by
    layer), `"output_nonfinite"}` (NaN/Inf counts are ints); `loss` is None
    without `y`. It never raises: on an error it appends the reason to
    `notes` and returns None (then and on every later call).

    Example:

    >>> import numpy as np, keras
    >>> model = keras.Sequential([keras.Input((4,)),
    ...     keras.layers.Dense(8, activation="relu", name="hidden"),
    ...     keras.layers.Dense(1, name="out")], name="net")
    >>> model.compile("sgd", "mse")
    >>> probe = Probe(model)
    >>> probe.layers, probe.monitored
    (['net/hidden', 'net/out'], [('hidden', 'relu')])
    >>> stats = probe(np.ones((16, 4)), np.zeros((16, 1)))
    >>> len(stats["grad_rms"]), 0.0 <= stats["dead"]["hidden"] <= 1.0
    (2, True)
    """

    def __init__(
        self, model: Any, *, gradients: bool = True, activations: bool = True
    ):
        if not isinstance(model, keras.Model):
            raise ValueError(
                "`model` must be a `keras.Model`. "
                f"Received: model={type(model).__name__}"
            )
        v.check_choice("gradients", gradients, (True, False))
        v.check_choice("activations", activations, (True, False))
        self.model = model
        self.gradients = bool(gradients)
        self.activations = bool(activations)
        self.layers: list[str] = []
        self.monitored: list[tuple[str, str]] = []
        self.activation_names: dict[str, str] = {}
        self.units: dict[str, int] = {}
        self.notes: list[str] = []
        self.traces = 0
        self._fn, self._failed, self._ready = None, False, False
        self._compiled = None  # JAX: the compiled pass
        self._with_loss = self._with_grads = False
        if model.built:
            try:
                self._setup()
            except Exception as e:  # noqa: BLE001 (reported by __call__)
                self._failed = True
                self.notes.append(f"probe unavailable ({type(e).__name__}: "
                                  f"{e})")

    # ------------------------------------------------------------------
    # Set-up: which kernels and activations, and the network to run.

    def _setup(self) -> None:
        model = self.model
        self._kernels = [
            w for w in model.trainable_variables
            if w.path.rsplit("/", 1)[-1] == "kernel"
        ]
        ids = {id(w) for w in self._kernels}
        self._others = [
            w for w in model.trainable_variables + model.non_trainable_variables
            if id(w) not in ids
        ]
        self.layers = [w.path.rsplit("/", 1)[0] for w in self._kernels]
        self._net, self._n_acts = model, 0
        if self.activations:
            self._monitor()
        params = inspect.signature(model.compute_loss).parameters
        self._loss_has_training = "training" in params  # Keras >= 3.3 API
        self._ready = True

    def _monitor(self) -> None:
        model = self.model
        io = _graph_io(model)
        if io is None:
            self.notes.append(
                "activation probes need a Sequential or functional model"
            )
            return
        inputs, outputs = io
        out_ids = {id(t) for t in keras.tree.flatten(outputs)}
        tensors = []
        for layer in model.layers:
            name = activation_name(layer)
            if name not in _KINDS or _recurrent(layer):
                continue
            try:
                out = layer.output
            except (AttributeError, ValueError) as e:  # shared layers
                self.notes.append(f"activation of {layer.name} skipped ({e})")
                continue
            if not keras.backend.is_keras_tensor(out) or id(out) in out_ids:
                continue  # the output layer may rightly be confident
            self.monitored.append((layer.name, _KINDS[name]))
            self.activation_names[layer.name] = name
            self.units[layer.name] = int(out.shape[-1])
            tensors.append(out)
        try:
            if tensors:
                self._net = keras.Model(inputs, [outputs, tensors])
                self._n_acts = len(tensors)
        except ValueError as e:  # e.g. a graph Keras cannot re-wire
            self.monitored, self.units, self.activation_names = [], {}, {}
            self.notes.append(f"activation probes unavailable ({e})")

    # ------------------------------------------------------------------
    # The pass, written once in keras.ops; each backend differentiates it.

    def _forward(self, kernels, others, x, y, sw, gain):
        """(loss * gain, (loss, y_pred, activations)) at the given values."""
        mapping = list(zip(self._kernels, kernels))
        mapping += list(zip(self._others, others))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
            out = self._net(x, training=False)
            y_pred, acts = (out[0], out[1]) if self._n_acts else (out, [])
            kwargs = {"training": False} if self._loss_has_training else {}
            loss = None
            if self._with_loss:
                loss = self.model.compute_loss(
                    x=x, y=y, y_pred=y_pred, sample_weight=sw, **kwargs
                )
        if loss is None:
            loss = ops.zeros(())
        loss = ops.cast(loss, "float32")
        return loss * gain, (loss, y_pred, list(acts))

    def _stats(self, loss, grads, kernels, y_pred, acts, unscale):
        """Two flat tensors (float32 statistics, int32 counts); the names of
        their entries go to `self._keys` (`_unpack` reads them back)."""
        floats, ints, keys_f, keys_i = [], [], [], []

        def put(key, name, value, count=False):
            (ints if count else floats).append(value)
            (keys_i if count else keys_f).append((key, name))

        put("loss", None, loss * unscale[1])
        for g, w, name in zip(grads, kernels, self.layers):
            g = ops.zeros_like(w) if g is None else g  # unconnected kernel
            g = ops.cast(g, "float32") * unscale[0]
            put("grad_rms", name, _rms(g))
            put("grad_nonfinite", name, _count(g), count=True)
        for w, name in zip(kernels, self.layers):
            put("weight_rms", name, _rms(w))
            put("weight_nonfinite", name, _count(w), count=True)
        for (name, kind), a in zip(self.monitored, acts):
            a = ops.cast(a, "float32")
            put("act_nonfinite", name, _count(a), count=True)
            if kind == "sigmoid":
                pinned = ops.logical_or(a < 1 - _SATURATION, a > _SATURATION)
            elif kind == "tanh":
                pinned = ops.abs(a) > _SATURATION
            if kind != "relu":
                put("saturated", name, ops.mean(ops.cast(pinned, "float32")))
            elif self.activation_names[name] == "relu":
                a = ops.reshape(a, (-1, a.shape[-1]))
                never = ops.all(a <= 0.0, axis=0)
                put("dead", name, ops.mean(ops.cast(never, "float32")))
                put("active_fraction", name, ops.mean(
                    ops.cast(a > 0.0, "float32")))
        bad = sum(_count(p) for p in keras.tree.flatten(y_pred))
        put("output_nonfinite", None, bad, count=True)
        self._keys = keys_f + keys_i
        return ops.stack(floats), ops.stack(ints)

    def _unscale(self, gain):
        """(gradient factor, loss factor) undoing the loss and replica scale."""
        replicas = 1.0
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # Keras divides every loss by the replicas in sync under a
            # strategy scope: report the single-device loss.
            replicas = float(tf.distribute.get_strategy().num_replicas_in_sync)
        return replicas / gain, replicas

    def _build_tensorflow(self):
        import tensorflow as tf

        def probe(x, y, sw, gain):
            self.traces += 1
            kernels = [tf.convert_to_tensor(w.value) for w in self._kernels]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(kernels)
                scaled, (loss, y_pred, acts) = self._forward(
                    kernels, [w.value for w in self._others], x, y, sw, gain
                )
            grads = tape.gradient(scaled, kernels) if self._with_grads else []
            return self._stats(
                loss, grads, kernels, y_pred, acts, self._unscale(gain)
            )

        # A partial has no `__code__`: TF then counts traces per Probe, not
        # over the probes of all models (its "frequent retracing" warning).
        return tf.function(
            functools.partial(probe), reduce_retracing=True, autograph=False
        )

    def _build_jax(self):
        import jax

        def probe(kernels, others, x, y, sw, gain):
            self.traces += 1
            args = (kernels, others, x, y, sw, gain)
            grads = []
            if self._with_grads:
                forward = jax.value_and_grad(self._forward, has_aux=True)
                (_, (loss, y_pred, acts)), grads = forward(*args)
            else:
                _, (loss, y_pred, acts) = self._forward(*args)
            return self._stats(
                loss, grads, kernels, y_pred, acts, self._unscale(gain)
            )

        fn = jax.jit(probe)

        def call(x, y, sw, gain):
            kernels = [w.value for w in self._kernels]
            others = [w.value for w in self._others]
            args = (kernels, others, x, y, sw, gain)
            if self._compiled is None:
                self._compiled = _compat.xla_compile_fast(fn.lower(*args))
            try:
                return self._compiled(*args)
            except (TypeError, ValueError):  # other shapes: jit retraces
                return fn(*args)

        return call

    def _build_torch(self):
        import torch

        def call(x, y, sw, gain):
            kernels = [
                w.value.detach().requires_grad_(self._with_grads)
                for w in self._kernels
            ]
            others = [w.value for w in self._others]
            with torch.enable_grad():  # also when called under no_grad
                scaled, (loss, y_pred, acts) = self._forward(
                    kernels, others, x, y, sw, gain
                )
                grads = [None] * len(kernels) if self._with_grads else []
                if self._with_grads and scaled.requires_grad:
                    grads = torch.autograd.grad(
                        scaled, kernels, allow_unused=True
                    )
            with torch.no_grad():
                return self._stats(
                    loss, grads, kernels, y_pred, acts, self._unscale(gain)
                )

        return call

    # ------------------------------------------------------------------
    # Calling.

    def _gain(self) -> float:
        """The optimizer's loss scale (mixed precision), else 1."""
        try:
            gain = self.model.optimizer.scale_loss(1.0)
            gain = float(ops.convert_to_numpy(gain))
        except Exception:  # noqa: BLE001 (no optimizer, or an unbuilt one)
            return 1.0
        return gain if np.isfinite(gain) and gain > 0 else 1.0

    def _warm_up(self, x, y, sw) -> None:
        """One eager pass that builds the compiled loss, assigning nothing.

        The loss metrics it creates are initialized when the outer
        StatelessScope exits, inside the model's strategy scope (TF).
        Skipped when the compiled loss is built already, as in `fit`, which
        builds it before any callback runs: on JAX the eager pass costs
        about a second (each operation is compiled on its own), more than
        the compiled probe itself.
        """
        if not self._with_loss:
            return  # nothing to build: the pass is the model alone
        try:
            if _compat.compile_loss_built(self.model):
                return
        except _compat.CompatError:
            pass  # then the eager pass (tests/test_compat.py reports it)
        strategy = getattr(self.model, "distribute_strategy", None)
        scope = strategy.scope() if strategy else contextlib.nullcontext()
        values = [[w.value for w in ws] for ws in (self._kernels, self._others)]
        with scope, keras.StatelessScope():
            self._forward(*values, x, y, sw, 1.0)

    def __call__(self, x: Any, y: Any = None, sample_weight: Any = None):
        if self._failed:
            return None
        try:
            x, y, sw = keras.tree.map_structure(
                _to_tensor, (x, y, sample_weight), none_is_leaf=True
            )
            sync = getattr(self.model, "jax_state_sync", None)
            if callable(sync):  # JAX `fit` detaches the state mid-epoch
                sync()
            if not self._ready:
                self.model(x, training=False)  # a subclassed model's build
                self._setup()
            if self._fn is None:
                self._with_loss = y is not None
                self._with_grads = self.gradients and self._with_loss
                if self.gradients and not self._with_loss:
                    self.notes.append("gradient probes need targets `y`")
                self._warm_up(x, y, sw)
                self._fn = getattr(self, f"_build_{keras.backend.backend()}")()
            elif (y is not None) != self._with_loss:
                raise ValueError("`y` must be given on every call or never")
            gain = self._gain()
            floats, ints = self._fn(x, y, sw, ops.convert_to_tensor(
                np.float32(gain)
            ))
            values = _numpy(floats).astype(float).tolist()
            values += _numpy(ints).astype(int).tolist()
        except Exception as e:  # noqa: BLE001 (a probe never breaks fit)
            self._failed = True
            self.notes.append(f"probe failed ({type(e).__name__}: {e})")
            return None
        return self._unpack(values)

    def _unpack(self, values: list) -> dict:
        """The statistics by name, from the entries `_stats` packed."""
        out = {"loss": None, "grad_rms": [], "weight_rms": [],
               "grad_nonfinite": 0, "weight_nonfinite": {}, "dead": {},
               "active_fraction": {}, "saturated": {}, "act_nonfinite": {},
               "output_nonfinite": 0}
        for (key, name), value in zip(self._keys, values):
            if isinstance(out[key], list):
                out[key].append(value)
            elif isinstance(out[key], dict):
                out[key][name] = value
            elif key == "grad_nonfinite":  # summed over the kernels
                out[key] += value
            else:
                out[key] = value
        if not self._with_loss:
            out["loss"] = None
        return out

