"""`RunRecorder`: the callback that fills a `RunRecord` during `fit`.

It only gathers plain numbers; `TrainingDiagnosis` (its subclass) hands
the record to the pure `analyze`. Works on every Keras backend: the probe
(`ktk.diagnosis.probe.Probe`) has one small gradient function per backend,
everything else is NumPy on logged values and `model.get_weights()`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras
import numpy as np

from keras_training_kit import _compat, _numerics
from keras_training_kit._batch_loss import BatchLossTracker
from keras_training_kit.diagnosis import _neighbours, rules
from keras_training_kit.diagnosis._model_facts import (
    _sample,
    _scan_inputs,
    initial_data_loss,
    output_layer,
    weight_penalty,
)
from keras_training_kit.diagnosis._probe_ops import activation_name
from keras_training_kit.diagnosis.record import RunRecord

PROBE_SIZE = 64  # examples in the probe batch
INPUT_SAMPLES = 512  # examples for the input and target statistics
DEFAULT_EVERY = 25  # steps between probes when the epoch length is unknown


class RunRecorder(keras.callbacks.Callback):
    """Fills `self.record` (a `RunRecord`) during `fit`.

    Args:
        data: an optional probe batch `(x, y)`; by default the first
            training batches are used.
        gradients: probe per-layer gradient norms.
        activations: probe dead/saturated units.
        every: steps between probes; None: twice per epoch.
    """

    def __init__(self, data=None, gradients=True, activations=True,
                 every=None):
        super().__init__()
        self.data = data
        self.gradients = bool(gradients)
        self.activations = bool(activations)
        self.every = every
        self.record = RunRecord()

    # -- set-up -------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self.record = RunRecord(backend=keras.backend.backend())
        self._tracker = BatchLossTracker()
        self._step = 0
        self._epoch = 0
        self._probe = None
        self._probe_data = None
        self._yardstick = None
        self._snapshot = None
        self._best = (math.inf, None)
        steps = (self.params or {}).get("steps")
        self.record.steps_per_epoch = int(steps) if steps else None
        self._every = self.every or (
            max(1, int(steps) // 2) if steps else DEFAULT_EVERY
        )
        self._fit = _compat.fit_locals()
        self._callbacks = _compat.fit_callbacks(self._fit)
        self._describe_model()
        sample = self._probe_sample()
        if sample is None:
            self._warn(
                "no probe batch (pass `data=(x, y)`): gradient, activation "
                "and input statistics skipped"
            )
        else:
            self._setup_from_sample(*sample)
            # The loss at initialization (Karpathy's "verify loss @ init"),
            # on the whole probe batch rather than one noisy first batch.
            self.record.initial_loss = self._initial_data_loss()
            self.record.initial_penalty = weight_penalty(self.model)
            self._run_probe()
        weights = self.model.get_weights()
        if _numerics.all_finite(weights):
            self._best = (math.inf, weights)

    def _warn(self, message: str) -> None:
        self.record.notes.append(message)
        warnings.warn(f"TrainingDiagnosis: {message}", stacklevel=3)

    def _describe_model(self) -> None:
        model, rec = self.model, self.record
        opt = getattr(model, "optimizer", None)
        if opt is not None:
            rec.optimizer = {"class": type(opt).__name__,
                             "learning_rate": self._learning_rate()}
        loss = getattr(model, "loss", None)
        name = rules.loss_name(loss)
        if name is not None:
            rec.loss = {"name": name, "from_logits": rules.from_logits(loss)}
        layer = output_layer(model)
        if layer is not None:
            try:
                units = int(layer.output.shape[-1])
            except (TypeError, ValueError, AttributeError):
                units = None
            rec.head = {"layer": layer.name,
                        "activation": activation_name(layer),
                        "units": units}

    def _probe_sample(self) -> tuple | None:
        if self.data is not None:
            x, y, _ = keras.utils.unpack_x_y_sample_weight(tuple(self.data))
            return x, y
        if self._fit is None:
            return None
        arrays = self._array_sample()
        if arrays is not None:
            return arrays
        try:
            it = self._fit["epoch_iterator"]
            batches = _compat.adapter_batches(it.data_adapter, INPUT_SAMPLES)
            return _sample(batches, INPUT_SAMPLES) if batches else None
        except Exception as e:  # noqa: BLE001 (a probe must never break fit)
            self.record.notes.append(f"no probe batch ({e})")
            return None

    def _array_sample(self) -> tuple | None:
        """Rows spread evenly over array inputs (`fit(x, y)` with arrays),
        taken without drawing from any random generator, so that observing
        a run never changes its shuffling."""
        x, y = self._fit.get("x"), self._fit.get("y")
        flat = keras.tree.flatten(x) + keras.tree.flatten(y)
        if not flat or not all(isinstance(a, np.ndarray) for a in flat):
            return None
        n = len(flat[0])
        if n == 0 or any(len(a) != n for a in flat):
            return None
        rows = np.unique(np.linspace(0, n - 1, min(n, INPUT_SAMPLES))
                         .astype("int64"))
        take = lambda a: a[rows]  # noqa: E731
        return (keras.tree.map_structure(take, x),
                None if y is None else keras.tree.map_structure(take, y))

    def _preprocessed(self, x: Any) -> Any:
        """The input as the first trainable layer sees it: through the
        model's leading `Normalization`/`Rescaling` layers (the remedy for
        unscaled inputs lives inside the model)."""
        for layer in self.model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if not isinstance(layer, (keras.layers.Normalization,
                                      keras.layers.Rescaling)):
                break
            try:
                x = keras.ops.convert_to_numpy(layer(x))
            except Exception:  # noqa: BLE001 (then the raw input)
                break
        return x

    def _setup_from_sample(self, x: Any, y: Any) -> None:
        rec, model = self.record, self.model
        flat_x = keras.tree.flatten(x)
        if len(flat_x) == 1 and not any(
            isinstance(layer, keras.layers.Embedding) for layer in model.layers
        ):
            rec.inputs = rules.input_statistics(self._preprocessed(flat_x[0]))
        scan = None
        if self._fit is not None and self.data is None:
            scan = _scan_inputs(self._fit.get("x"))
        if rec.inputs is not None and scan is not None:
            rec.inputs["nonfinite"], rec.inputs["rows_nonfinite"] = scan
            rec.inputs["scanned"] = "all"
        single_y = y is not None and not isinstance(y, (dict, list, tuple))
        if single_y and rec.loss:
            rec.targets = rules.target_statistics(y)
            rec.baseline_loss = rules.constant_predictor_loss(
                y, rec.loss["name"]
            )
        probing = self.gradients or self.activations  # not loss-only
        if probing and single_y and rec.inputs is not None and (
            self._unweighted()
            and _neighbours.supported((rec.loss or {}).get("name"))
        ):
            self._yardstick = (flat_x[0], y)  # for the bias check at the end
        units = (rec.head or {}).get("units")
        rec.chance_loss = rules.chance_loss((rec.loss or {}).get("name"),
                                            units, rec.targets)
        if y is None or not (self.gradients or self.activations):
            return
        take = min(len(flat_x[0]), PROBE_SIZE)
        self._probe_data = (
            keras.tree.map_structure(lambda a: a[:take], x),
            keras.tree.map_structure(lambda a: a[:take], y),
        )

    def _unweighted(self) -> bool:
        """No `class_weight`/`sample_weight`: the model is trained to
        minimize the plain error the bias check compares."""
        fit = self._fit or {}
        return fit.get("class_weight") is None and (
            fit.get("sample_weight") is None)

    def _compare_with_neighbours(self) -> None:
        """The trained model's error on the input sample against k-NN's
        (`ktk.diagnosis._neighbours`), in inference mode, 64 rows at a
        time."""
        x, y = self._yardstick
        self._yardstick = None
        rec = self.record
        if rec.nonfinite_weights is not None or not rec.logs:
            return
        try:
            parts = [keras.ops.convert_to_numpy(
                self.model(x[i:i + PROBE_SIZE], training=False))
                for i in range(0, len(x), PROBE_SIZE)]
            rec.neighbours = _neighbours.compare(
                x, y, np.concatenate(parts), rec.loss["name"],
                rec.loss.get("from_logits"),
                linear=len(rec.layers) == 1)  # what `analyze` judges
        except Exception as e:  # noqa: BLE001 (a probe must never break fit)
            rec.notes.append(f"no nearest-neighbour comparison ({e})")

    def _initial_data_loss(self) -> float | None:
        if self._probe_data is None or self.record.loss is None:
            return None
        return initial_data_loss(self.model, *self._probe_data)

    # -- probes -------------------------------------------------------------

    def _kernels(self) -> list:
        # The probe's layers: one per trainable kernel, in the same order.
        return [w for w in self.model.trainable_variables
                if w.path.rsplit("/", 1)[-1] == "kernel"]

    def _run_probe(self) -> None:
        if self._probe_data is None:
            return
        if self._probe is None:
            from keras_training_kit.diagnosis.probe import Probe

            try:
                self._probe = Probe(self.model, gradients=self.gradients,
                                    activations=self.activations)
            except Exception as e:  # noqa: BLE001
                self._probe_data = None
                self._warn(f"probes unavailable ({type(e).__name__}: {e})")
                return
            rec = self.record
            rec.layers = list(self._probe.layers)
            rec.monitored = dict(self._probe.monitored)
            rec.units = dict(self._probe.units)
            for note in self._probe.notes:
                self._warn(note)
        stats = self._probe(*self._probe_data)
        if stats is None:
            self._probe_data = None
            self._warn("probes stopped: " + "; ".join(self._probe.notes[-1:]))
            return
        stats = dict(stats, step=self._step, epoch=self._epoch)
        self.record.probes.append(stats)
        self._snapshot = (self._step, [
            np.array(keras.ops.convert_to_numpy(w)) for w in self._kernels()
        ])

    def _update_ratio(self) -> None:
        """||w_now - w_probe|| / ||w_probe|| per step, per layer."""
        step0, before = self._snapshot
        self._snapshot = None
        steps = self._step - step0
        if steps <= 0 or not self.record.probes:
            return
        names = self.record.layers
        ratios = {}
        for i, w in enumerate(self._kernels()):
            now = np.asarray(keras.ops.convert_to_numpy(w))
            if now.shape != before[i].shape:
                continue
            # Plain reductions, not np.linalg.norm: no BLAS call per layer.
            norm = math.sqrt(float(np.square(before[i], dtype="float64").sum()))
            if norm > 0 and math.isfinite(norm):
                diff = np.subtract(now, before[i], dtype="float64")
                delta = math.sqrt(float(np.square(diff).sum()))
                name = names[i] if i < len(names) else w.path
                ratios[name] = delta / norm / steps
        self.record.probes[-1]["update_ratio"] = ratios

    # -- per batch and epoch ----------------------------------------------

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)
        self._tracker.start_epoch()
        self.record.batch_losses.append([])

    def on_train_batch_end(self, batch, logs=None):
        mean = (logs or {}).get("loss")
        if mean is None:
            return
        if not self.record.batch_losses:
            self.record.batch_losses.append([])
        value, count = self._tracker.update(batch, _numerics.as_float(mean))
        self.record.batch_losses[-1].append(value)
        first = self._step == 0
        self._step += count
        if first:
            self.record.batches_per_loss = count
        if first and count == 1 and self.record.initial_loss is None:
            # (an execution of several batches averages trained ones too)
            self.record.initial_loss = value if math.isfinite(value) else None
        if not math.isfinite(value):
            self._on_nonfinite(f"loss became {value} at batch {batch + 1}")
            return
        if self._snapshot is not None:
            self._update_ratio()
        if self._step % self._every < count:
            self._run_probe()

    def on_epoch_end(self, epoch, logs=None):
        rec = self.record
        clean = {}
        for key, value in (logs or {}).items():
            x = _numerics.as_float(value)
            if x is not None:
                clean[key] = x
        rec.epochs.append(int(epoch))
        rec.logs.append(clean)
        rec.learning_rates.append(self._learning_rate())
        weights = self.model.get_weights()
        if rec.nonfinite_weights is None and not _numerics.all_finite(weights):
            names = [w.path.rsplit("/", 1)[0]
                     for w in self.model.weights
                     if _numerics.count_nonfinite(
                         keras.ops.convert_to_numpy(w))]
            rec.nonfinite_weights = {"epoch": int(epoch), "step": self._step,
                                     "layers": list(dict.fromkeys(names))}
            self._on_nonfinite(f"weights of {names[:3]} became NaN/Inf")
            return
        bad = _numerics.nonfinite_logs(clean, _numerics.LOSS_KEYS)
        if bad:
            key = next(iter(bad))
            self._on_nonfinite(f"{key} became {bad[key]}")
            return
        self._keep_if_best(clean.get("val_loss", clean.get("loss")), weights)

    def on_train_end(self, logs=None):
        if self._yardstick is not None:
            self._compare_with_neighbours()
        for cb in self._callbacks:
            if isinstance(cb, keras.callbacks.EarlyStopping):
                self.record.early_stopping = {
                    "best_epoch": getattr(cb, "best_epoch", None),
                    "stopped_epoch": int(getattr(cb, "stopped_epoch", 0)),
                    "restored": bool(cb.restore_best_weights
                                     and getattr(cb, "stopped_epoch", 0)),
                }
        self._best = (math.inf, None)
        self._fit = None

    # -- divergence ---------------------------------------------------------

    def _keep_if_best(self, monitor, weights=None) -> None:
        """Keeps a copy of the weights of the best finite epoch."""
        if monitor is None or not monitor < self._best[0]:
            return
        weights = self.model.get_weights() if weights is None else weights
        if _numerics.all_finite(weights):
            self._best = (monitor, [np.copy(w) for w in weights])

    def restore_best(self) -> bool:
        """Restores the best finite weights seen; False when there are none."""
        if self._best[1] is None:
            return False
        self.model.set_weights(self._best[1])
        return True

    def _on_nonfinite(self, why: str) -> None:
        """Hook for subclasses: something became NaN/Inf."""

    def _learning_rate(self) -> float | None:
        opt = getattr(self.model, "optimizer", None)
        if opt is None:
            return None
        try:
            return _numerics.as_float(
                keras.ops.convert_to_numpy(opt.learning_rate)
            )
        except Exception:  # noqa: BLE001 (an exotic optimizer)
            return None
