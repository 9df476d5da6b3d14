"""A PNG of the loss curves with the diagnosis findings marked."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from keras_training_kit.diagnosis.finding import Finding

_COLORS = {"error": "tab:red", "warning": "tab:orange", "info": "tab:green"}


def plot_findings(
    history: dict[str, Sequence[float]],
    findings: Sequence[Finding],
    path: str | os.PathLike,
    title: str = "Training diagnosis",
) -> str:
    """Writes the training/validation loss (and learning rate) per epoch
    with each finding marked at its epoch, and returns the path.

    matplotlib is imported here, so `import keras_training_kit` stays light.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lr_key = next(
        (k for k in ("learning_rate", "lr") if k in history), None
    )
    fig = Figure(figsize=(8, 6 if lr_key else 4.5))
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(2 if lr_key else 1, 1, sharex=True, squeeze=False)
    ax = axes[0][0]
    epochs = list(range(len(history["loss"])))
    finite = []
    for key, style in (("loss", "-o"), ("val_loss", "-s")):
        if key in history:
            values = [
                v if math.isfinite(v) else float("nan") for v in history[key]
            ]
            ax.plot(epochs[: len(values)], values, style, ms=3, label=key)
            finite += [v for v in values if math.isfinite(v) and v > 0]
    if finite and max(finite) / min(finite) > 100:
        ax.set_yscale("log")
    for i, f in enumerate(findings):
        color = _COLORS[f.severity]
        label = f"{f.code} ({f.severity})"
        if f.epoch is not None:
            ax.axvline(f.epoch, color=color, ls="--", lw=1)
            ax.annotate(
                f.code,
                (f.epoch, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                color=color,
            )
        ax.text(
            0.99,
            0.97 - 0.07 * i,
            label + ("" if f.epoch is None else f" @ {f.epoch}"),
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color=color,
        )
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    if lr_key:
        lax = axes[1][0]
        lax.plot(epochs[: len(history[lr_key])], history[lr_key], "-", c="k")
        lax.set_ylabel("learning rate")
    axes[-1][0].set_xlabel("epoch (0-based)")
    fig.tight_layout()
    path = os.fspath(path)
    canvas.print_png(path)
    return path
