"""The demo's small helpers: a progress line, embedding the kit's pages.

Imported after `_common.quiet()` (it imports Keras).
"""

from __future__ import annotations

import os
import re
import tempfile
import time

import keras
import numpy as np

import _common
from keras_training_kit import _html

UNAVAILABLE = "not available in this version"


class Progress(keras.callbacks.Callback):
    """A one-line progress bar over the epochs of a `fit`."""

    def __init__(self, label: str, epochs: int) -> None:
        super().__init__()
        self.label, self.epochs = label, epochs

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        bar = "#" * int(20 * done / self.epochs)
        loss = (logs or {}).get("loss", float("nan"))
        print(
            f"\r  {self.label:<28}[{bar:<20}] epoch {done}/{self.epochs} "
            f"loss {loss:.4g} {time.perf_counter() - self.start:5.1f}s",
            end="", flush=True,
        )

    def on_train_end(self, logs=None):
        print(flush=True)


def kit_html(obj) -> str | None:
    """The body of the page `obj.to_html(path)` writes, or None.

    The kit's renderers write whole pages; the report embeds their body
    (without their `<h1>`), so the HTML comes from the kit, not from here.
    """
    to_html = getattr(obj, "to_html", None)
    if to_html is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "part.html")
        to_html(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
    body = re.search(r"<body[^>]*>(.*)</body>", text, re.S)
    body = body.group(1) if body else text
    return re.sub(r"<h1>.*?</h1>", "", body, count=1, flags=re.S)


def unavailable(what: str) -> str:
    print(f"  {what}: {UNAVAILABLE}")
    return _html.paragraph(f"{what}: {UNAVAILABLE}.", cls="warning")


def curves_figure(runs: dict, title: str, key: str = "val_loss"):
    fig, axes = _common.new_figure(size=(6.4, 3.6))
    ax = axes[0][0]
    for name, history in runs.items():
        values = np.asarray(history.get(key, history["loss"]), float)
        values[~np.isfinite(values)] = np.nan
        ax.plot(np.arange(1, len(values) + 1), values, "-o", ms=3,
                label=name)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _html.figure(fig, alt=title)
