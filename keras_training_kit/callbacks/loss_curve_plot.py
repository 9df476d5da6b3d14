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

# Line colours per finding severity; "info" (healthy) is not drawn.
_SEVERITY_COLOURS = {"warning": "tab:orange", "error": "tab:red"}


def _to_float(value: Any) -> float | None:
    try:
        return float(np.asarray(keras.ops.convert_to_numpy(value)))
    except (TypeError, ValueError):
        return None


def _diagnose(history: dict) -> list:
    """The kit's offline diagnosis of `history`, or `[]` when unavailable."""
    try:
        from keras_training_kit import diagnosis
    except ImportError:
        return []
    diagnose = getattr(diagnosis, "diagnose", None)
    if not callable(diagnose):  # e.g. only the submodule of that name
        return []
    try:
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
    the curves go through `ktk.diagnosis.diagnose` and each finding that names
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

    ```python
    plot = ktk.callbacks.LossCurvePlot("curves.png")
    model.fit(x, y, validation_data=(xv, yv), epochs=30, callbacks=[plot])
    ```

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
        self.history = {}
        self.findings = []
        self._epochs = 0

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
            _diagnose(self._clean_history()) if self.mark_findings else []
        )
        self.render(
            self.history,
            self.path,
            findings=self.findings,
            log_scale=self.log_scale,
            dpi=self.dpi,
        )

    def _clean_history(self) -> dict:
        # Diagnosis gets complete columns only: a gap (validation every
        # `validation_freq` epochs) is not a NaN loss, which means
        # "diverged". Logged NaNs stay.
        return {
            key: column
            for key, column in self.history.items()
            if all(x is not None for x in column)
        }

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
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        def column(key: str) -> np.ndarray | None:
            values = history.get(key)
            if values is None:
                return None
            out = np.array(
                [np.nan if x is None else float(x) for x in values],
                dtype="float64",
            )
            return out if np.isfinite(out).any() else None

        loss = column("loss")
        if loss is None and history.get("loss"):
            loss = np.full(len(history["loss"]), np.nan)
        if loss is None:
            raise ValueError(
                "`history` must hold a per-epoch `loss` list. Received keys: "
                f"{sorted(history)}"
            )
        epochs = np.arange(1, len(loss) + 1)
        fig = Figure(figsize=(8, 5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        lines = ax.plot(epochs, loss, "o-", color="C0", ms=3, label="loss")
        val = column("val_loss")
        if val is not None:
            keep = np.isfinite(val)
            lines += ax.plot(
                epochs[keep], val[keep], "s-", color="C1", ms=3,
                label="val_loss",
            )
        bad = ~np.isfinite(loss)
        if bad.any():
            lines += ax.plot(
                epochs[bad], np.zeros(bad.sum()), "x", color="tab:red",
                ms=9, mew=2, transform=ax.get_xaxis_transform(),
                clip_on=False, label="loss NaN/Inf",
            )
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlim(0.5, len(loss) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)

        lr = column("learning_rate")
        if lr is not None and np.all(lr[np.isfinite(lr)] > 0):
            ax2 = ax.twinx()
            lines += ax2.plot(
                epochs, lr, "--", color="tab:green", lw=1.2,
                label="learning rate",
            )
            ax2.set_yscale("log")
            ax2.set_ylabel("learning rate", color="tab:green")

        listed = []
        for finding in findings:
            code = getattr(finding, "code", str(finding))
            severity = getattr(finding, "severity", "warning")
            epoch = getattr(finding, "epoch", None)
            if severity not in _SEVERITY_COLOURS:
                continue
            listed.append(code)
            if epoch is None:
                continue
            x = int(epoch) + 1
            ax.axvline(x, color=_SEVERITY_COLOURS[severity], ls=":", lw=1.5)
            ax.annotate(
                code, xy=(x, 0.98), xycoords=("data", "axes fraction"),
                rotation=90, ha="right", va="top", fontsize=9,
                color=_SEVERITY_COLOURS[severity],
                bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 1},
            )
        if title is None:
            title = (
                "findings: " + ", ".join(dict.fromkeys(listed))
                if listed else "loss per epoch"
            )
        # Legend above the axes: inside, it would hide the finding labels.
        ax.legend(
            lines, [ln.get_label() for ln in lines], loc="lower center",
            bbox_to_anchor=(0.5, 1.0), ncol=len(lines), frameon=False,
        )
        fig.suptitle(title)
        fig.tight_layout()
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=dpi)
        return path

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
