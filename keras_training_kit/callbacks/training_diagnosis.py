"""`TrainingDiagnosis`: the babysitter that says why a run trains badly.

The callback only gathers numbers during `fit`; the judgement is made by
the pure rules of `ktk.diagnosis` (see `keras_training_kit/diagnosis/rules.py`).
"""

from __future__ import annotations

import inspect
import json
import math
import os
from typing import Any

import keras
import numpy as np

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.diagnosis import rules
from keras_training_kit.diagnosis.analysis import Diagnosis, analyze
from keras_training_kit.diagnosis.finding import CODES

_PROBE_SIZE = 64  # examples in the probe batch
_INPUT_SAMPLES = 512  # examples for the input statistics
_DEFAULT_EVERY = 25  # steps between probes when the epoch length is unknown
_STOP_CODES = tuple(c for c in CODES if c != "healthy")


def _activation_kind(layer: Any) -> str | None:
    """"relu", "sigmoid" or "tanh" for layers that end in one, else None."""
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None)
    name = name or (act if isinstance(act, str) else "")
    name = str(name).lower()
    for kind in ("relu", "sigmoid", "tanh"):
        if name == kind:
            return kind
    return None


def _fit_locals() -> dict | None:
    """The local variables of the running `fit` (its data and callbacks).

    Keras 3 does not hand the training data to callbacks; `fit` keeps it in
    its local `epoch_iterator`, whose data adapter can yield a batch
    without disturbing training.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            it = frame.f_locals.get("epoch_iterator")
            if it is not None and hasattr(it, "data_adapter"):
                return dict(frame.f_locals)
            frame = frame.f_back
    finally:
        del frame
    return None


def _concat(batches: list, size: int) -> Any:
    """Concatenates the leading axis of nested batches, up to `size`."""
    first = batches[0]
    if isinstance(first, dict):
        return {k: _concat([b[k] for b in batches], size) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(
            _concat([b[i] for b in batches], size) for i in range(len(first))
        )
    if first is None:
        return None
    return np.concatenate([np.asarray(b) for b in batches])[:size]


def _batch_from_adapter(adapter: Any, size: int) -> tuple | None:
    """Up to `size` examples `(x, y)` from a Keras 3 data adapter."""
    batches = getattr(adapter, "_first_batches", None)  # Python generators
    if not batches:
        py_dataset = getattr(adapter, "py_dataset", None)
        if py_dataset is not None:
            batches = [py_dataset[0]]
    if not batches:
        batches = []
        count = 0
        for batch in adapter.get_numpy_iterator():
            batches.append(batch)
            x = keras.utils.unpack_x_y_sample_weight(batch)[0]
            count += len(keras.tree.flatten(x)[0])
            if count >= size:
                break
    if not batches:
        return None
    xs, ys = [], []
    for batch in batches:
        if not isinstance(batch, tuple):
            batch = (batch,)
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        xs.append(keras.tree.map_structure(np.asarray, x))
        if y is not None:
            y = keras.tree.map_structure(np.asarray, y)
        ys.append(y)
    return _concat(xs, size), (None if ys[0] is None else _concat(ys, size))


@register("callback", example={"every": 2, "verbose": 0})
class TrainingDiagnosis(keras.callbacks.Callback):
    """Watches a training run and says what is wrong, with numbers.

    A thin callback over the pure rules of `ktk.diagnosis`. During `fit` it
    gathers:

    - the per-epoch logs (`loss`, `val_loss`, ...);
    - the loss of every batch, recovered from Keras 3's running mean of the
      epoch (`l_k = k m_k - (k - 1) m_{k-1}`);
    - every `every` steps, on a fixed probe batch: the RMS gradient of each
      layer's kernel (one compiled forward/backward pass with
      `tf.GradientTape`, no optimizer involved, so any optimizer works),
      the fraction of dead ReLU units and of saturated sigmoid/tanh
      outputs;
    - once, the per-feature mean/std of the inputs, the initial loss and
      the constant predictor's loss from the probe targets.

    After `fit`, `findings` holds the `Finding` list (codes `healthy`,
    `underfitting`, `overfitting`, `lr_too_high`, `lr_too_low`,
    `noisy_loss`, `diverged`, `vanishing_gradients`,
    `exploding_gradients`, `dead_units`, `saturated_units`,
    `unscaled_inputs`, `high_initial_loss`), `report()` explains them with
    the course's remedies, and `to_json()` exports them. When a
    `keras.callbacks.TensorBoard` callback is in the same `fit`, the report
    is also written as TensorBoard text under `<log_dir>/diagnosis`.

    Args:
        data: optional probe batch `(x, y)` for the gradient, activation and
            input statistics. Defaults to `None`: the first training
            batches are used (arrays, `tf.data` datasets, generators and
            `PyDataset` all work).
        gradients: whether to probe per-layer gradient norms. Defaults to
            `True`.
        activations: whether to probe dead/saturated units. Defaults to
            `True`.
        every: steps between probes. Defaults to `None`: automatic, twice
            per epoch.
        stop_on: codes that stop `fit` (`model.stop_training`) when found.
            On `diverged` the weights of the best finite epoch are restored.
            Defaults to `("diverged",)`.
        verbose: 0 silent, 1 prints the report after `fit`, 2 also prints
            problems as they appear at each epoch end. Defaults to `1`.

    Example:

    ```python
    diag = ktk.callbacks.TrainingDiagnosis()
    model.fit(x, y, validation_data=(xv, yv), epochs=30, callbacks=[diag])
    print(diag.report())
    ```

    Reference:
        - Zhang et al., 2021. AUTOTRAINER: An Automatic DNN Training
          Problem Detection and Repair System (ICSE).
          https://doi.org/10.1109/ICSE43902.2021.00043
        - Karpathy, 2019. A Recipe for Training Neural Networks.
          http://karpathy.github.io/2019/04/25/recipe/
    """

    def __init__(
        self,
        data: Any = None,
        gradients: bool = True,
        activations: bool = True,
        every: int | None = None,
        stop_on: Any = ("diverged",),
        verbose: int = 1,
    ):
        super().__init__()
        if data is not None and (
            not isinstance(data, (tuple, list)) or len(data) not in (1, 2, 3)
        ):
            raise ValueError(
                "Argument `data` must be None or a tuple `(x, y)`. "
                f"Received: data={type(data).__name__}"
            )
        v.check_choice("gradients", gradients, (True, False))
        v.check_choice("activations", activations, (True, False))
        if every is not None:
            v.check_positive_int("every", every)
        if isinstance(stop_on, str):
            stop_on = (stop_on,)
        stop_on = tuple(stop_on or ())
        for code in stop_on:
            v.check_choice("stop_on", code, _STOP_CODES)
        v.check_choice("verbose", verbose, (0, 1, 2))
        self.data = data
        self.gradients = bool(gradients)
        self.activations = bool(activations)
        self.every = every
        self.stop_on = stop_on
        self.verbose = int(verbose)
        self._diagnosis = Diagnosis()
        self._reset()

    def get_config(self) -> dict:
        # `data` holds arrays, which are not configuration: it is kept out.
        return {
            "data": None,
            "gradients": self.gradients,
            "activations": self.activations,
            "every": self.every,
            "stop_on": list(self.stop_on),
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config: dict) -> TrainingDiagnosis:
        return cls(**config)

    # ------------------------------------------------------------------
    # Results.

    @property
    def findings(self) -> list:
        """The findings of the last `fit` (a `ktk.diagnosis.Diagnosis`)."""
        return self._diagnosis

    def report(self) -> str:
        """Readable text: every finding with its numbers and remedies."""
        if not self.history["loss"]:
            return "Training diagnosis: no training observed yet."
        return self._diagnosis.report()

    def to_json(self) -> str:
        """The findings, notes and the gathered numbers as JSON text."""
        out = self._diagnosis.to_dict()
        out["history"] = self.history
        out["initial_loss"] = self.initial_loss
        out["baseline_loss"] = self.baseline_loss
        out["chance_loss"] = self.chance_loss
        out["gradients"] = self.gradient_probes
        out["activations"] = {
            k: v for k, v in self.activation_probes.items() if k != "kinds"
        }
        return json.dumps(_jsonable(out), indent=2)

    def diagnose(self) -> Diagnosis:
        """Runs the rules on what was gathered so far."""
        history = {k: list(v) for k, v in self.history.items()}
        if not history.get("loss"):
            history["loss"] = [
                float(np.mean(b)) for b in self.batch_losses if len(b)
            ]
        if not history["loss"]:
            return Diagnosis(notes=["no training observed"])
        acts = self.activation_probes
        return analyze(
            history,
            self.baseline_loss,
            batch_losses=self.batch_losses,
            initial_loss=self.initial_loss,
            chance_loss=self.chance_loss,
            gradients=self.gradient_probes if self.gradients else None,
            activations=acts if self.activations else None,
            inputs=self.input_stats,
            notes=self.notes,
        )

    # ------------------------------------------------------------------
    # Gathering.

    def _reset(self) -> None:
        self.history: dict[str, list[float]] = {"loss": []}
        self.batch_losses: list[list[float]] = []
        self.gradient_probes: dict = {
            "rms": [],
            "weight_rms": [],
            "layers": [],
            "steps": [],
        }
        self.activation_probes: dict = {
            "dead": [],
            "saturated": [],
            "units": {},
            "kinds": {},
            "steps": [],
        }
        self.input_stats: dict | None = None
        self.initial_loss: float | None = None
        self.baseline_loss: float | None = None
        self.chance_loss: float | None = None
        self.notes: list[str] = []
        self._step = 0
        self._epoch = 0
        self._last_mean = (0, 0.0)
        self._probe_fn = None
        self._probe_data = None
        self._best = (math.inf, None)
        self._tensorboards: list = []
        self._monitored: list = []
        self._every = self.every or _DEFAULT_EVERY

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()
        self._diagnosis = Diagnosis()
        steps = (self.params or {}).get("steps")
        if self.every is not None:
            self._every = self.every
        elif steps:
            self._every = max(1, int(steps) // 2)
        else:
            self._every = _DEFAULT_EVERY
        fit = _fit_locals()
        if fit is not None:
            cbs = fit.get("callbacks")
            cbs = getattr(cbs, "callbacks", cbs) or []
            self._tensorboards = [
                c for c in cbs if isinstance(c, keras.callbacks.TensorBoard)
            ]
        probe = self._probe_batch(fit)
        if probe is None:
            self.notes.append(
                "no probe batch (pass `data=(x, y)`): gradient, activation "
                "and input statistics skipped"
            )
        else:
            self._setup_from_probe(*probe)
        if "diverged" in self.stop_on:
            self._best = (math.inf, self.model.get_weights())

    def _probe_batch(self, fit: dict | None) -> tuple | None:
        if self.data is not None:
            x, y, _ = keras.utils.unpack_x_y_sample_weight(tuple(self.data))
            return x, y
        if fit is None:
            return None
        try:
            return _batch_from_adapter(
                fit["epoch_iterator"].data_adapter, _INPUT_SAMPLES
            )
        except Exception as e:  # noqa: BLE001 (a probe must never break fit)
            self.notes.append(f"no probe batch from the training data ({e})")
            return None

    def _setup_from_probe(self, x: Any, y: Any) -> None:
        flat_x = keras.tree.flatten(x)
        if len(flat_x) == 1 and not any(
            isinstance(layer, keras.layers.Embedding)
            for layer in self.model.layers
        ):
            self.input_stats = rules.input_statistics(flat_x[0])
        units = None
        outputs = getattr(self.model, "outputs", None)
        try:
            if outputs and len(outputs) == 1:
                units = int(outputs[0].shape[-1])
        except (TypeError, AttributeError):
            units = None
        loss = getattr(self.model, "loss", None)
        if y is not None and not isinstance(y, (dict, list, tuple)):
            self.baseline_loss = rules.constant_predictor_loss(y, loss, units)
        self.chance_loss = rules.chance_loss(loss, units)
        if keras.backend.backend() != "tensorflow":
            self.notes.append("gradient/activation probes need TensorFlow")
            return
        if y is None or not (self.gradients or self.activations):
            return
        n = len(flat_x[0])
        take = min(n, _PROBE_SIZE)
        self._probe_data = (
            keras.tree.map_structure(lambda a: a[:take], x),
            keras.tree.map_structure(lambda a: a[:take], y),
        )

    def _build_probe(self) -> None:
        import tensorflow as tf

        model = self.model
        kernels = [
            w for w in model.trainable_weights if w.path.endswith("kernel")
        ]
        names = [w.path.rsplit("/", 1)[0] for w in kernels]
        monitored = []
        probe_model = model
        if self.activations:
            try:
                outputs = list(model.outputs)
                out_ids = {id(o) for o in outputs}
                for layer in model.layers:
                    kind = _activation_kind(layer)
                    if kind is None:
                        continue
                    out = layer.output
                    if id(out) in out_ids:
                        continue  # the output layer may be confident
                    monitored.append((layer.name, kind, out))
                if monitored:
                    probe_model = keras.Model(
                        model.inputs, outputs + [m[2] for m in monitored]
                    )
            except (AttributeError, ValueError, TypeError) as e:
                monitored = []
                self.notes.append(f"activation probes unavailable ({e})")
        n_out = len(model.outputs) if monitored else 0
        kinds = [m[1] for m in monitored]

        def probe(x, y):
            with tf.GradientTape() as tape:
                outs = probe_model(x, training=False)
                if monitored:
                    y_pred = outs[0] if n_out == 1 else outs[:n_out]
                    acts = outs[n_out:]
                else:
                    y_pred, acts = outs, []
                loss = model.compute_loss(
                    x=x, y=y, y_pred=y_pred, training=False
                )
            rms, wrms = [], []
            if self.gradients and kernels:
                grads = tape.gradient(loss, kernels)
                for g, w in zip(grads, kernels):
                    w = tf.cast(tf.convert_to_tensor(w), "float32")
                    wrms.append(tf.sqrt(tf.reduce_mean(tf.square(w))))
                    if g is None:
                        rms.append(tf.constant(0.0))
                    else:
                        g = tf.cast(tf.convert_to_tensor(g), "float32")
                        rms.append(tf.sqrt(tf.reduce_mean(tf.square(g))))
            stats = []
            for kind, a in zip(kinds, acts):
                a = tf.cast(a, "float32")
                if kind == "relu":
                    a = tf.reshape(a, [-1, tf.shape(a)[-1]])
                    never = tf.reduce_max(a, axis=0) <= 0.0
                    stats.append(tf.reduce_mean(tf.cast(never, "float32")))
                elif kind == "sigmoid":
                    pinned = (a < 0.01) | (a > 0.99)
                    stats.append(tf.reduce_mean(tf.cast(pinned, "float32")))
                else:
                    pinned = tf.abs(a) > 0.99
                    stats.append(tf.reduce_mean(tf.cast(pinned, "float32")))
            return tf.cast(loss, "float32"), (rms, wrms), stats

        self._probe_fn = tf.function(probe, reduce_retracing=True)
        self._monitored = [(m[0], m[1]) for m in monitored]
        self._units = {
            m[0]: int(m[2].shape[-1]) for m in monitored if m[1] == "relu"
        }
        self.gradient_probes["layers"] = names if self.gradients else []
        self.activation_probes["units"] = self._units
        self.activation_probes["kinds"] = {
            name: kind for name, kind in self._monitored
        }
        x, y = self._probe_data
        self._probe_data = (
            keras.tree.map_structure(tf.convert_to_tensor, x),
            keras.tree.map_structure(tf.convert_to_tensor, y),
        )

    def _run_probe(self) -> None:
        if self._probe_data is None:
            return
        try:
            if self._probe_fn is None:
                self._build_probe()
            # With several outputs, `compute_loss` updates per-output loss
            # metrics: keep the epoch's values as they were.
            saved = [
                (var, var.numpy())
                for metric in self.model.metrics
                for var in metric.variables
            ] if len(self.model.outputs or ()) > 1 else []
            _, (rms, wrms), stats = self._probe_fn(*self._probe_data)
            for var, value in saved:
                var.assign(value)
            rms = [float(r) for r in rms]
            wrms = [float(r) for r in wrms]
        except Exception as e:  # noqa: BLE001 (a probe must never break fit)
            self._probe_data = None
            self.notes.append(f"probes stopped ({type(e).__name__}: {e})")
            return
        if self.gradients and rms:
            self.gradient_probes["rms"].append(rms)
            self.gradient_probes["weight_rms"].append(wrms)
            self.gradient_probes["steps"].append(self._step)
        if self._monitored:
            dead, sat = {}, {}
            for (name, kind), s in zip(self._monitored, stats):
                (dead if kind == "relu" else sat)[name] = float(s)
            self.activation_probes["dead"].append(dead)
            self.activation_probes["saturated"].append(sat)
            self.activation_probes["steps"].append(self._step)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self.batch_losses.append([])
        self._last_mean = (0, 0.0)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.batch_losses:
            self.batch_losses.append([])
        mean = (logs or {}).get("loss")
        if mean is None:
            return
        mean = float(mean)
        k = batch + 1
        k0, m0 = self._last_mean
        if k <= k0:  # a new epoch without on_epoch_begin
            k0, m0 = 0, 0.0
        # Keras 3 logs the running mean of the epoch: undo it.
        value = (k * mean - k0 * m0) / max(k - k0, 1)
        if not math.isfinite(mean):
            value = mean
        self._last_mean = (k, mean)
        self.batch_losses[-1].append(value)
        first = self._step == 0
        self._step += max(k - k0, 1)
        if first:
            self.initial_loss = value if math.isfinite(value) else None
        if not math.isfinite(mean):
            if "diverged" in self.stop_on:
                self._stop("diverged", f"loss became {mean} at batch {batch}")
            return
        if first or self._step % self._every < max(k - k0, 1):
            self._run_probe()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        n = len(self.history["loss"])
        for key, value in logs.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            self.history.setdefault(key, [math.nan] * n).append(value)
        for key in self.history:
            if len(self.history[key]) == n:
                self.history[key].append(math.nan)
        if "diverged" in self.stop_on:
            monitor = logs.get("val_loss", logs.get("loss"))
            if monitor is not None:
                monitor = float(monitor)
                if not math.isfinite(monitor):
                    self._stop("diverged", f"loss became {monitor}")
                elif monitor < self._best[0]:
                    self._best = (monitor, self.model.get_weights())
        if self.verbose >= 2 or set(self.stop_on) - {"diverged"}:
            found = self.diagnose()
            hit = [f for f in found if f.code in self.stop_on]
            if self.verbose >= 2:
                for f in found.problems:
                    print(f"TrainingDiagnosis, epoch {epoch}: {f}")
            if hit and not self.model.stop_training:
                self._stop(hit[0].code, hit[0].summary)

    def _stop(self, code: str, why: str) -> None:
        if self.model.stop_training:
            return
        self.model.stop_training = True
        if code == "diverged" and self._best[1] is not None:
            self.model.set_weights(self._best[1])
            why += "; restored the weights of the best finite epoch"
        if self.verbose:
            print(f"TrainingDiagnosis: stopping on `{code}`: {why}")

    def on_train_end(self, logs: dict | None = None) -> None:
        self._diagnosis = self.diagnose()
        self._best = (math.inf, None)
        if self.verbose:
            print(self._diagnosis.report())
        for tb in self._tensorboards:
            self._write_tensorboard(tb)

    def _write_tensorboard(self, tb: Any) -> None:
        import tensorflow as tf

        log_dir = getattr(tb, "log_dir", None)
        if not log_dir:
            return
        writer = tf.summary.create_file_writer(
            os.path.join(log_dir, "diagnosis")
        )
        step = len(self.history["loss"])
        text = self._diagnosis.report().replace("\n", "  \n")
        with writer.as_default():
            tf.summary.text("training_diagnosis", text, step=step)
            for f in self._diagnosis:
                tf.summary.text(
                    f"finding/{f.code}", str(f), step=f.epoch or 0
                )
        writer.flush()
        writer.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
