"""A PNG of the loss curves (and learning rate), with findings marked."""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any, Iterable

import keras
import numpy as np

from keras_training_kit import _validation as v
from keras_training_kit._registry import register



def _to_float(value: Any) -> float | None:
    try:
        return float(np.asarray(keras.ops.convert_to_numpy(value)))
    except (TypeError, ValueError):
        return None


def _diagnose(history: dict, recorder: Any = None) -> list:
    """The findings to mark: those of a `TrainingDiagnosis` in the same
    `fit` (no second diagnosis), else the offline `diagnose(history)`."""
    from keras_training_kit.diagnosis import diagnose

    try:
        if recorder is not None:
            return list(recorder.diagnose())
        return list(diagnose(history))
    except Exception as error:  # a plot must not fail the training run
        warnings.warn(
            f"LossCurvePlot: diagnosis failed, plotting without findings: "
            f"{error!r}",
            stacklevel=3,
        )
        return []


@register(
    "callback",
    example={
        "path": os.path.join(tempfile.gettempdir(), "ktk_loss_curve.png")
    },
)
class LossCurvePlot(keras.callbacks.Callback):
    """Writes a PNG of the training and validation loss per epoch.

    The course's babysitting: "watch the loss curve". At the end of `fit`
    (and after every epoch with `every_epoch=True`) the callback draws the
    training `loss` and, when present, `val_loss` per epoch, and the
    learning rate on a second, logarithmic axis. With `mark_findings=True`
    the findings of a `ktk.callbacks.TrainingDiagnosis` in the same `fit`
    (else of `ktk.diagnosis.diagnose` on the curves) are drawn: each that names
    an epoch (overfitting, lr_too_high, diverged, ...) is marked by a
    vertical line labelled with its code; the others are listed in the
    title. Non-finite losses (a diverged run) are marked with a cross on
    the x axis.

    The learning rate is the one logged as `learning_rate` (e.g. by
    `keras.callbacks.ReduceLROnPlateau`), else the optimizer's current rate
    at the end of each epoch (a schedule is evaluated at the current step).

    Epochs on the x axis are 1-based, as in the progress bar ("Epoch 1/30");
    a finding's 0-based `epoch` is drawn at `epoch + 1`.

    Matplotlib is imported only when drawing, and only its Agg canvas is
    used: no window opens and the global pyplot state is left alone.

    Args:
        path: where to write the PNG file (overwritten).
        every_epoch: redraw after every epoch too, to watch a long run.
            Defaults to `False` (only at the end of `fit`).
        mark_findings: mark the findings of `ktk.diagnosis.diagnose`.
            Defaults to `True`.
        log_scale: draw the losses on a logarithmic axis. Defaults to
            `False`.
        dpi: the resolution of the PNG, an integer >= 20. Defaults to `100`.

    Attributes:
        history: the per-epoch values plotted, `{"loss": [...],
            "val_loss": [...], "learning_rate": [...]}` and every other
            logged quantity.
        findings: the findings marked on the last plot.

    Example:

    >>> import os, tempfile
    >>> import numpy as np, keras
    >>> import keras_training_kit as ktk
    >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    >>> y = x.sum(axis=1)
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> path = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> plot = ktk.callbacks.LossCurvePlot(path)
    >>> _ = model.fit(x, y, validation_split=0.25, epochs=3,
    ...               callbacks=[plot], verbose=0)
    >>> open(path, "rb").read(4)[1:]  # a PNG file
    b'PNG'

    Reference:
        - [Karpathy, A Recipe for Training Neural Networks, 2019](
          https://karpathy.github.io/2019/04/25/recipe/).
    """

    def __init__(
        self,
        path: str,
        every_epoch: bool = False,
        mark_findings: bool = True,
        log_scale: bool = False,
        dpi: int = 100,
    ) -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ValueError(
                "Argument `path` must be a file path (str or os.PathLike). "
                f"Received: path={path!r}"
            )
        for name, value in (
            ("every_epoch", every_epoch),
            ("mark_findings", mark_findings),
            ("log_scale", log_scale),
        ):
            if not isinstance(value, bool):
                raise ValueError(
                    f"Argument `{name}` must be a bool. "
                    f"Received: {name}={value!r}"
                )
        v.check_positive_int("dpi", dpi, minimum=20)
        self.path = os.fspath(path)
        self.every_epoch = every_epoch
        self.mark_findings = mark_findings
        self.log_scale = log_scale
        self.dpi = dpi
        self.history: dict[str, list] = {}
        self.findings: list = []
        self._epochs = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        from keras_training_kit import _compat
        from keras_training_kit.diagnosis.recorder import RunRecorder

        self.history = {}
        self.findings = []
        self._epochs = 0
        self._recorder = next(
            (c for c in _compat.fit_callbacks(_compat.fit_locals())
             if isinstance(c, RunRecorder)),
            None,
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        if "learning_rate" not in logs and "lr" not in logs:
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is not None:
                logs["learning_rate"] = _to_float(optimizer.learning_rate)
        elif "lr" in logs and "learning_rate" not in logs:
            logs["learning_rate"] = logs.pop("lr")
        n = self._epochs
        self._epochs += 1
        for key, value in logs.items():
            # Keep every list aligned with the epochs (validation may run
            # only every `validation_freq` epochs).
            column = self.history.setdefault(key, [None] * n)
            column.append(_to_float(value))
        for column in self.history.values():
            column.extend([None] * (n + 1 - len(column)))
        if self.every_epoch:
            self._draw()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.history.get("loss"):
            self._draw()

    def _draw(self) -> None:
        self.findings = (
            _diagnose(self.history, getattr(self, "_recorder", None))
            if self.mark_findings
            else []
        )
        self.render(
            self.history,
            self.path,
            findings=self.findings,
            log_scale=self.log_scale,
            dpi=self.dpi,
        )

    @staticmethod
    def render(
        history: dict,
        path: str,
        findings: Iterable[Any] = (),
        log_scale: bool = False,
        dpi: int = 100,
        title: str | None = None,
    ) -> str:
        """Draws per-epoch curves and findings to a PNG.

        Usable without a callback, e.g. on a `History.history` dict or a
        CSVLogger file read into a dict.

        Args:
            history: per-epoch lists: `loss`, optionally `val_loss` and
                `learning_rate` (missing entries as `None` or NaN).
            path: where to write the PNG file.
            findings: objects with `code`, `severity` and `epoch` (0-based
                or `None`), e.g. `ktk.diagnosis.Finding`.
            log_scale: logarithmic loss axis.
            dpi: PNG resolution.
            title: the figure title; defaults to the findings' codes.

        Returns:
            `path`.
        """
        from keras_training_kit.diagnosis.plot import plot_findings

        return plot_findings(
            history, findings, path, title=title, log_scale=log_scale,
            dpi=dpi,
        )

    def get_config(self) -> dict:
        return {
            "path": self.path,
            "every_epoch": self.every_epoch,
            "mark_findings": self.mark_findings,
            "log_scale": self.log_scale,
            "dpi": self.dpi,
        }

    @classmethod
    def from_config(cls, config: dict) -> LossCurvePlot:
        return cls(**config)
