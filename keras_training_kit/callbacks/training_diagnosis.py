"""`TrainingDiagnosis`: the babysitter that says why a run trains badly.

Data flows one way: the callback records plain numbers into a `RunRecord`
(`ktk.diagnosis.recorder.RunRecorder`), the pure `ktk.diagnosis.analyze`
judges it, and the immutable findings are rendered (text, JSON, HTML,
TensorBoard).
"""

from __future__ import annotations

from typing import Any

import keras

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.diagnosis import render
from keras_training_kit.diagnosis.analysis import Diagnosis, analyze
from keras_training_kit.diagnosis.finding import CODES
from keras_training_kit.diagnosis.recorder import RunRecorder

_STOP_CODES = tuple(c for c in CODES if c != "healthy")


@register("callback", example={"every": 2, "verbose": 0})
class TrainingDiagnosis(RunRecorder):
    """Watches a training run and says what is wrong, with numbers.

    During `fit` it records, on every Keras backend (TensorFlow, JAX,
    PyTorch):

    - the per-epoch logs, and the loss of every batch, recovered from
      Keras 3's running mean of the epoch (`l_k = k m_k - (k - 1) m_{k-1}`);
    - the optimizer's learning rate per epoch;
    - about twice per epoch, on a fixed probe batch: the RMS gradient of
      each layer's kernel (one compiled forward/backward pass, no optimizer
      involved, so any optimizer works), the fraction of dead ReLU units
      and of saturated sigmoid/tanh outputs, NaN/Inf in weights and
      activations, and the update-to-weight ratio `||dw|| / ||w||` of the
      next step;
    - once: the output layer against the loss, the per-feature scale of the
      inputs (and NaN/Inf anywhere in array inputs), the targets' scale,
      the initial loss, the constant predictor's and the chance loss.

    After `fit`, `findings` holds the `Finding` list, root cause first
    (codes: `healthy`, `underfitting`, `overfitting`, `lr_too_high`,
    `lr_too_low`, `noisy_loss`, `diverged`, `vanishing_gradients`,
    `exploding_gradients`, `dead_units`, `saturated_units`,
    `unscaled_inputs`, `high_initial_loss`, `loss_output_mismatch`,
    `unscaled_targets`), each with its evidence, the course's advice and
    machine-readable `remedies`; `report()` explains them; `to_json()`,
    `to_html(path)` export them; with a `keras.callbacks.TensorBoard` in the
    same `fit` the report is also written as TensorBoard text under
    `<log_dir>/diagnosis`. When a probe cannot be had (e.g. activations of
    a subclassed model) a Python warning says so and `record.notes` keeps
    it.

    Args:
        data: optional probe batch `(x, y)`. Defaults to `None`: the first
            training batches are used (arrays, `tf.data`, generators and
            `PyDataset` all work).
        gradients: whether to probe per-layer gradients. Defaults to `True`.
        activations: whether to probe dead/saturated units. Defaults to
            `True`.
        every: steps between probes, a positive integer. Defaults to
            `None`: twice per epoch.
        stop_on: codes that stop `fit` (`model.stop_training`) when found.
            On `diverged` (a NaN/Inf loss, weights or activations) the
            weights of the best finite epoch are restored. Defaults to
            `("diverged",)`.
        verbose: 0 silent, 1 prints the report after `fit`, 2 also prints
            problems at each epoch end. Defaults to `1`.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    >>> y = (x[:, :1] > 0).astype("float32")
    >>> model = keras.Sequential([keras.Input((4,)),
    ...                           keras.layers.Dense(1, activation="sigmoid")])
    >>> model.compile("adam", "binary_crossentropy")
    >>> diag = TrainingDiagnosis(verbose=0)
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[diag])
    >>> diag.findings[0].severity in ("info", "warning", "error")
    True

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
        super().__init__(data, gradients, activations, every)
        self.stop_on = stop_on
        self.verbose = int(verbose)
        self._diagnosis = Diagnosis()
        self._tensorboards: list = []

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

    # -- results ------------------------------------------------------------

    @property
    def findings(self) -> Diagnosis:
        """The findings of the last `fit` (a `ktk.diagnosis.Diagnosis`)."""
        return self._diagnosis

    @property
    def history(self) -> dict:
        """Per-epoch logs of the last `fit` (`None` where not logged)."""
        return self.record.history

    def diagnose(self) -> Diagnosis:
        """Analyzes what was recorded so far (pure; `fit` need not end)."""
        return analyze(self.record)

    def report(self) -> str:
        """Readable text: every finding with its numbers and remedies."""
        return render.text(self._diagnosis)

    def to_json(self, include_record: bool = True) -> str:
        """The findings, notes and (by default) the whole record as JSON."""
        return render.to_json(
            self._diagnosis, self.record if include_record else None
        )

    def to_html(self, path: str) -> str:
        """Writes a self-contained HTML page: the curves with the findings
        marked, a table of findings and their remedies. Returns `path`."""
        return render.to_html(self._diagnosis, path, self.record)

    def html_section(self, title: str = "Training diagnosis") -> str:
        """The same content as `to_html`, as an HTML section to embed."""
        return render.html_sections(self._diagnosis, self.record, title)

    # -- hooks --------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._diagnosis = Diagnosis()
        super().on_train_begin(logs)
        self._tensorboards = [
            c for c in self._callbacks
            if isinstance(c, keras.callbacks.TensorBoard)
        ]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        if self.model.stop_training and "diverged" in self.stop_on:
            return
        if self.verbose >= 2 or set(self.stop_on) - {"diverged"}:
            found = self.diagnose()
            if self.verbose >= 2:
                for f in found.problems:
                    print(f"TrainingDiagnosis, epoch {epoch + 1}: {f}")
            hit = [f for f in found if f.code in self.stop_on]
            if hit:
                self._stop(hit[0].code, hit[0].summary)

    def _on_nonfinite(self, why: str) -> None:
        if "diverged" in self.stop_on:
            self._stop("diverged", why)

    def _stop(self, code: str, why: str) -> None:
        if self.model.stop_training:
            return
        self.model.stop_training = True
        if code == "diverged" and self.restore_best():
            why += "; restored the weights of the best finite epoch"
        if self.verbose:
            print(f"TrainingDiagnosis: stopping on `{code}`: {why}")

    def on_train_end(self, logs: dict | None = None) -> None:
        super().on_train_end(logs)
        self._diagnosis = self.diagnose()
        if self.verbose:
            print(self.report())
        step = len(self.record.logs)
        for tb in self._tensorboards:
            log_dir = getattr(tb, "log_dir", None)
            if log_dir:
                render.to_tensorboard(self._diagnosis, log_dir, step)
