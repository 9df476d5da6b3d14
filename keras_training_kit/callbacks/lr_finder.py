"""Smith's learning-rate range test, as a callback for a short `fit`."""

from __future__ import annotations

import logging
import math
import os
import warnings
from typing import Any

import keras
import numpy as np

from keras_training_kit import _validation as v
from keras_training_kit._batch_loss import BatchLossTracker
from keras_training_kit._registry import register

# The smoothed loss of the first updates is still dominated by a few noisy
# batches, even bias-corrected: the minimum and slope searches skip them.
_SKIP_START = 3
_MIN_POINTS = _SKIP_START + 3


def _ema(values: np.ndarray, beta: float) -> np.ndarray:
    """The bias-corrected exponential moving average of `values`."""
    out = np.empty_like(values)
    avg = 0.0
    for i, value in enumerate(values):
        avg = beta * avg + (1.0 - beta) * value
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def _print(message: str) -> None:
    if keras.utils.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        logging.getLogger("keras_training_kit").info(message)


def _to_float(value: Any) -> float:
    return float(np.asarray(keras.ops.convert_to_numpy(value)))


@register(
    "callback", example={"min_lr": 1e-4, "max_lr": 1.0, "steps": 4}
)
class LRFinder(keras.callbacks.Callback):
    """Learning-rate range test: find a good learning rate in one short run.

    The course: "too small: slow decay; too large: the loss oscillates or
    explodes". Smith's range test measures where that happens. During a
    short `fit`, the optimizer's learning rate grows exponentially, one value
    per batch, from `min_lr` to `max_lr` over `steps` batches; the loss of
    each batch is recorded and smoothed; the test stops when the smoothed
    loss explodes. Afterwards the model's weights and the optimizer's state
    (slots, iteration count, learning rate) are restored exactly, so the
    model is ready for the real training.

    ```python
    lr_i = min_lr * (max_lr / min_lr) ** (i / (steps - 1))   # batch i
    avg_i = smoothing * avg_{i-1} + (1 - smoothing) * loss_i  # avg_{-1} = 0
    smoothed_i = avg_i / (1 - smoothing ** (i + 1))           # bias-corrected
    stop when smoothed_i > diverge_factor * min(smoothed_0..i-1), or NaN
    ```

    `loss_i` is the loss of batch `i` alone: Keras logs the running mean of
    the epoch so far, so `loss_i = (n_i * mean_i - n_{i-1} * mean_{i-1}) /
    (n_i - n_{i-1})` with `n` the batches seen in the epoch (exact when all
    batches have the same size; the last, smaller batch of an epoch is
    slightly misweighted).

    `suggestion` is one tenth of the learning rate at the minimum of the
    smoothed loss (ignoring the first 3 batches, whose average still rests
    on one or two noisy batches): the loss still falls steeply there, a
    decade below the edge of divergence (Smith's "the maximum rate that
    still converges", with a safety factor; fastai's `lr_min`). The
    minimum is preferred to the steepest point because it is the most
    stable feature of the curve: with `smoothing=0.98` over 100 batches
    the moving average lags about 50 batches (several decades of learning
    rate), which shifts a steepest point towards divergence, and the slope
    of a noisy curve varies from run to run. On a small MLP on the digits
    data, the suggestion lands in [0.14, 0.32] for SGD, [0.014, 0.045] for
    Adam and [0.008, 0.017] for RMSProp over batch sizes 16-64 and 60-200
    steps, rates that train well (there SGD diverges at 2, Adam is best
    near 0.01-0.03). The steepest descent is reported too, as
    `suggestions["steepest"]`: the steepest negative slope per decade of
    learning rate of a zero-lag smoothing (the same moving average run
    forward, then backward, over the batches up to the minimum).

    Run it in a `fit` with enough batches: `epochs >=
    ceil(steps / steps_per_epoch)`; it stops `fit` itself after `steps`
    batches or at divergence. The optimizer's learning rate must be a
    number (a variable), not a schedule.

    Args:
        min_lr: the first learning rate, a number > 0. Defaults to `1e-7`.
        max_lr: the last learning rate, a number > `min_lr`. Defaults to
            `10.0`.
        steps: the number of batches of the sweep, an integer >= 2.
            Defaults to `100`.
        smoothing: `β`, the weight of the past in the exponential moving
            average of the loss, in [0, 1). Defaults to `0.98`.
        diverge_factor: the test stops when the smoothed loss exceeds this
            multiple of its minimum, a number > 1. Defaults to `4.0`.
        verbose: `0` (silent) or `1` (print the suggestion). Defaults to `1`.

    Attributes:
        history: `{"lr": [...], "loss": [...], "smoothed_loss": [...]}`, one
            entry per batch of the sweep.
        suggestion: the suggested learning rate (float), or `None` when the
            sweep had too few finite points.
        suggestions: `{"min_loss_over_10": ..., "steepest": ...}`, the
            rules described above (`suggestion` is the first).
        diverged: whether the sweep stopped on divergence.

    Example:

    >>> import numpy as np, keras
    >>> import keras_training_kit as ktk
    >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    >>> y = (x[:, :2].sum(axis=1) > 0).astype("int32")
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    >>> model.compile(ktk.optimizers.SGD(), keras.losses.
    ...               SparseCategoricalCrossentropy(from_logits=True))
    >>> finder = ktk.callbacks.LRFinder(min_lr=1e-4, max_lr=100.0, steps=60,
    ...                                 verbose=0)
    >>> _ = model.fit(x, y, batch_size=16, epochs=4, callbacks=[finder],
    ...               verbose=0)
    >>> 1e-4 < finder.suggestion < 100.0
    True
    >>> _ = model.optimizer.learning_rate.assign(finder.suggestion)
    >>> _ = model.fit(x, y, epochs=2, verbose=0)  # the real training

    Reference:
        - [Smith, Cyclical Learning Rates for Training Neural Networks, 2017,
          §3.3](https://arxiv.org/abs/1506.01186).
        - [Smith, A disciplined approach to neural network
          hyper-parameters: Part 1, 2018](https://arxiv.org/abs/1803.09820).
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        steps: int = 100,
        smoothing: float = 0.98,
        diverge_factor: float = 4.0,
        verbose: int = 1,
    ) -> None:
        super().__init__()
        v.check_positive("min_lr", min_lr)
        v.check_positive("max_lr", max_lr)
        if max_lr <= min_lr:
            raise ValueError(
                "Argument `max_lr` must be greater than `min_lr`. "
                f"Received: max_lr={max_lr!r}, min_lr={min_lr!r}"
            )
        v.check_positive_int("steps", steps, minimum=2)
        v.check_unit_interval("smoothing", smoothing)
        v.check_range("diverge_factor", diverge_factor, 1.0, low_open=True)
        v.check_choice("verbose", verbose, (0, 1, 2))
        self.min_lr = min_lr
        self.max_lr = max_lr
        self.steps = steps
        self.smoothing = smoothing
        self.diverge_factor = diverge_factor
        self.verbose = verbose
        self._reset_results()

    def _reset_results(self) -> None:
        self.history: dict[str, list[float]] = {
            "lr": [],
            "loss": [],
            "smoothed_loss": [],
        }
        self.suggestion: float | None = None
        self.suggestions: dict[str, float | None] = {
            "min_loss_over_10": None,
            "steepest": None,
        }
        self.diverged = False

    def lr_at(self, step: int) -> float:
        """The learning rate of batch `step` (0-based) of the sweep."""
        fraction = step / (self.steps - 1)
        return self.min_lr * (self.max_lr / self.min_lr) ** fraction

    # -- hooks -----------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        try:
            # Setting the rate is what the sweep does: fail now, before
            # training, when it is a schedule or a callable.
            self._saved_lr = _to_float(optimizer.learning_rate)
            optimizer.learning_rate = self._saved_lr
        except (TypeError, AttributeError, ValueError) as error:
            raise ValueError(
                "LRFinder sets the learning rate itself: compile the model "
                "with an optimizer whose `learning_rate` is a number, not a "
                "schedule or a callable, for the range test. Received: "
                f"optimizer={optimizer.__class__.__name__} ({error})"
            ) from error
        self._reset_results()
        self._step = 0
        self._avg = 0.0
        self._best = math.inf
        self._tracker = BatchLossTracker()
        if not optimizer.built:
            # Slots must exist now to be snapshot (Keras builds them lazily
            # at the first update, inside the strategy's scope).
            strategy = getattr(self.model, "distribute_strategy", None)
            if strategy is not None:
                with strategy.scope():
                    optimizer.build(self.model.trainable_variables)
            else:
                optimizer.build(self.model.trainable_variables)
        self._saved_weights = self.model.get_weights()
        self._saved_optimizer = [
            keras.ops.convert_to_numpy(x) for x in optimizer.variables
        ]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        # Keras restarts its running mean of the loss every epoch.
        self._tracker.start_epoch()

    def on_train_batch_begin(
        self, batch: int, logs: dict | None = None
    ) -> None:
        if self._step < self.steps:
            self.model.optimizer.learning_rate = self.lr_at(self._step)

    def on_train_batch_end(
        self, batch: int, logs: dict | None = None
    ) -> None:
        if self._step >= self.steps or not logs or "loss" not in logs:
            return
        loss, _ = self._tracker.update(batch, float(logs["loss"]))

        lr = self.lr_at(self._step)
        self._step += 1
        beta = self.smoothing
        self._avg = beta * self._avg + (1.0 - beta) * loss
        smoothed = self._avg / (1.0 - beta**self._step)
        self.history["lr"].append(lr)
        self.history["loss"].append(loss)
        self.history["smoothed_loss"].append(smoothed)
        if not math.isfinite(smoothed) or (
            self._step > 1 and smoothed > self.diverge_factor * self._best
        ):
            self.diverged = True
            self.model.stop_training = True
            return
        self._best = min(self._best, smoothed)
        if self._step >= self.steps:
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        self.model.set_weights(self._saved_weights)
        for variable, value in zip(optimizer.variables, self._saved_optimizer):
            variable.assign(value)
        optimizer.learning_rate = self._saved_lr
        self._saved_weights = self._saved_optimizer = None
        if self._step < self.steps and not self.diverged:
            reached = self.lr_at(max(self._step - 1, 0))
            warnings.warn(
                f"LRFinder: the sweep ran {self._step} of {self.steps} "
                "batches before `fit` ended; pass more epochs (epochs >= "
                "steps / steps_per_epoch). The suggestion only covers "
                f"learning rates up to {reached:.3g}.",
                stacklevel=2,
            )
        self.suggestions = self._suggest()
        self.suggestion = self.suggestions["min_loss_over_10"]
        if self.verbose > 0:
            _print(self.summary())

    # -- results ---------------------------------------------------------

    def _suggest(self) -> dict[str, float | None]:
        lrs = np.asarray(self.history["lr"], dtype="float64")
        raw = np.asarray(self.history["loss"], dtype="float64")
        smoothed = np.asarray(self.history["smoothed_loss"], dtype="float64")
        finite = np.isfinite(smoothed) & np.isfinite(raw)
        lrs, raw, smoothed = lrs[finite], raw[finite], smoothed[finite]
        if len(smoothed) < _MIN_POINTS:
            return {"min_loss_over_10": None, "steepest": None}
        low = _SKIP_START + int(np.argmin(smoothed[_SKIP_START:]))
        if low == _SKIP_START:
            warnings.warn(
                "LRFinder: the loss was lowest at the very start of the "
                "sweep; lower `min_lr` to see where it starts to fall.",
                stacklevel=3,
            )
        # Zero-lag smoothing: the causal average, run forward then backward
        # over the batches up to the minimum (the diverging tail would
        # leak into the backward pass).
        end = max(low + 1, _MIN_POINTS)
        both = _ema(_ema(raw[:end], self.smoothing)[::-1], self.smoothing)
        both = both[::-1]
        end = max(int(np.argmin(both)) + 1, _MIN_POINTS)
        slope = np.gradient(both[:end], np.log10(lrs[:end]))
        steepest = _SKIP_START + int(np.argmin(slope[_SKIP_START:]))
        return {
            "min_loss_over_10": float(lrs[low] / 10.0),
            "steepest": float(lrs[steepest]),
        }

    def summary(self) -> str:
        """A one-line account of the sweep and its suggestion."""
        n = len(self.history["lr"])
        if self.suggestion is None:
            return f"LRFinder: {n} batches, too few to suggest a learning rate."
        end = "diverged" if self.diverged else "ended"
        other = self.suggestions["steepest"]
        return (
            f"LRFinder: swept {self.history['lr'][0]:.3g} -> "
            f"{self.history['lr'][-1]:.3g} over {n} batches ({end}); "
            f"suggested learning rate {self.suggestion:.3g} (min-loss/10; "
            f"steepest descent: {other:.3g})."
            " Weights and optimizer state restored."
        )

    def plot(self, path: str | os.PathLike) -> str:
        """Writes a PNG of the smoothed loss against the learning rate.

        Args:
            path: where to write the PNG file.

        Returns:
            `path`.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not self.history["lr"]:
            raise ValueError(
                "LRFinder.plot() needs a finished sweep: run `fit` with the "
                "callback first."
            )
        lrs = np.asarray(self.history["lr"])
        raw = np.asarray(self.history["loss"])
        smoothed = np.asarray(self.history["smoothed_loss"])
        fig = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(lrs, raw, color="0.75", lw=0.8, label="batch loss")
        ax.plot(lrs, smoothed, color="C0", lw=2, label="smoothed loss")
        ax.set_xscale("log")
        finite = smoothed[np.isfinite(smoothed)]
        if finite.size:
            low, start = float(finite.min()), float(finite[0])
            top = max(start, low) + 0.5 * abs(max(start, low) - low) + 1e-12
            ax.set_ylim(low - 0.1 * (top - low), top)
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="C3", ls="--",
                       label=f"suggestion {self.suggestion:.2g}")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        ax.set_title("Learning-rate range test")
        ax.legend(loc="best")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100)
        return path

    def get_config(self) -> dict:
        return {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "steps": self.steps,
            "smoothing": self.smoothing,
            "diverge_factor": self.diverge_factor,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config: dict) -> LRFinder:
        return cls(**config)
