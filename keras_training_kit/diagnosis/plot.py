"""The one plotter of loss curves: losses, learning rate, findings marked.

`loss_figure` draws a matplotlib `Figure` (Agg canvas, never pyplot, so no
window opens and the global state is left alone); `plot_findings` writes
it as a PNG. `LossCurvePlot`, `TrainingDiagnosis.to_html`, `ktk diagnose`
and the repair report all draw through here. Epochs on the x axis are
1-based, as in Keras' progress bar; a finding's 0-based `epoch` is drawn at
`epoch + 1`. matplotlib is imported only when drawing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

# Line colours per finding severity; "info" (healthy) is not drawn.
SEVERITY_COLOURS = {"warning": "tab:orange", "error": "tab:red"}


def _column(history: dict, key: str) -> np.ndarray | None:
    values = history.get(key)
    if values is None:
        return None
    out = np.array(
        [np.nan if x is None else float(x) for x in values], dtype="float64"
    )
    return out if np.isfinite(out).any() else None


def loss_figure(
    history: dict,
    findings: Iterable[Any] = (),
    log_scale: bool = False,
    title: str | None = None,
    figsize: tuple = (8, 5),
) -> Any:
    """A `Figure` of per-epoch `loss`, `val_loss` and the learning rate.

    Args:
        history: per-epoch lists: `loss`, optionally `val_loss` and
            `learning_rate` (or `lr`); missing entries as `None`.
        findings: objects with `code`, `severity` and `epoch` (0-based or
            `None`), e.g. `ktk.diagnosis.Finding`; those with an epoch are
            marked by a labelled vertical line.
        log_scale: logarithmic loss axis.
        title: the figure title; defaults to the findings' codes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    loss = _column(history, "loss")
    if loss is None and history.get("loss"):
        loss = np.full(len(history["loss"]), np.nan)
    if loss is None:
        raise ValueError(
            "`history` must hold a per-epoch `loss` list. Received keys: "
            f"{sorted(history)}"
        )
    epochs = np.arange(1, len(loss) + 1)
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lines = ax.plot(epochs, loss, "o-", color="C0", ms=3, label="loss")
    val = _column(history, "val_loss")
    if val is not None:
        keep = np.isfinite(val)
        lines += ax.plot(
            epochs[: val.size][keep], val[keep], "s-", color="C1", ms=3,
            label="val_loss",
        )
    bad = ~np.isfinite(loss)
    if bad.any():
        lines += ax.plot(
            epochs[bad], np.zeros(bad.sum()), "x", color="tab:red",
            ms=9, mew=2, transform=ax.get_xaxis_transform(),
            clip_on=False, label="loss NaN/Inf",
        )
    finite = loss[np.isfinite(loss) & (loss > 0)]
    if log_scale or (finite.size and finite.max() / finite.min() > 1e3):
        ax.set_yscale("log")
    ax.set_xlim(0.5, len(loss) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    lr = _column(history, "learning_rate")
    if lr is None:
        lr = _column(history, "lr")
    if lr is not None and np.all(lr[np.isfinite(lr)] > 0):
        ax2 = ax.twinx()
        lines += ax2.plot(
            epochs[: lr.size], lr, "--", color="tab:green", lw=1.2,
            label="learning rate",
        )
        ax2.set_yscale("log")
        ax2.set_ylabel("learning rate", color="tab:green")
    listed = []
    for finding in findings:
        code = getattr(finding, "code", str(finding))
        severity = getattr(finding, "severity", "warning")
        epoch = getattr(finding, "epoch", None)
        if severity not in SEVERITY_COLOURS:
            continue
        listed.append(code)
        if epoch is None:
            continue
        x = int(epoch) + 1
        ax.axvline(x, color=SEVERITY_COLOURS[severity], ls=":", lw=1.5)
        ax.annotate(
            code, xy=(x, 0.98), xycoords=("data", "axes fraction"),
            rotation=90, ha="right", va="top", fontsize=9,
            color=SEVERITY_COLOURS[severity],
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
    return fig


def plot_findings(
    history: dict,
    findings: Iterable[Any],
    path: str | os.PathLike,
    title: str | None = None,
    log_scale: bool = False,
    dpi: int = 100,
) -> str:
    """Writes `loss_figure(...)` as a PNG and returns the path."""
    fig = loss_figure(history, findings, log_scale=log_scale, title=title)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
