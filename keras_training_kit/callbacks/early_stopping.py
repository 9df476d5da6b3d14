"""Early stopping that says why, keeps the best weights and survives NaN."""

from __future__ import annotations

import logging

import keras

from keras_training_kit import _compat, _numerics
from keras_training_kit import _validation as v
from keras_training_kit._registry import register


def _print(message: str) -> None:
    # Keras' own routing: stdout, or the logger when interactive logging is
    # off (e.g. under keras.utils.disable_interactive_logging()).
    if keras.utils.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        logging.getLogger("keras_training_kit").info(message)


@register("callback", example={"monitor": "loss", "patience": 2})
class EarlyStopping(keras.callbacks.EarlyStopping):
    """Stop when the validation loss stops improving, and keep the best model.

    The course's early stopping: "stop when the validation loss stops
    improving". Keras' `keras.callbacks.EarlyStopping` with four changes:

    - `restore_best_weights=True` by default: at the end of `fit` the model
      holds the weights of the best epoch, whether training stopped early
      or ran all its epochs.
    - A NaN or Inf value is never recorded as the best, and weights are never
      taken from (or restored to) an epoch whose monitored value, `loss` or
      `val_loss` is not finite, or whose weights are not finite.
    - When `loss`, `val_loss` or the monitored value becomes NaN/Inf (the run
      diverged), training stops at once, without waiting for `patience`,
      and the best finite weights are restored (those from before training
      when no epoch was finite and monitored yet).
    - It says why and when it stopped: `stop_reason` (a sentence),
      `stopped_epoch`, `best_epoch` and `best`; printed when `verbose=1`.

    The stopping rule is Keras': an epoch improves when

    ```python
    current < best - min_delta    # mode "min" (losses)
    current > best + min_delta    # mode "max" (accuracies)
    ```

    and training stops after `patience` epochs in a row without improvement,
    counted from `start_from_epoch`. Epoch numbers in attributes are 0-based
    like every Keras callback hook; the printed messages use the 1-based
    numbers of the progress bar ("Epoch 7").

    Use `keras.callbacks.TerminateOnNaN` as well to stop in the middle of
    the epoch that diverges; this callback then still restores the best
    finite weights at its end.

    Args:
        monitor: the logged quantity to watch. Defaults to `"val_loss"`.
        patience: the number of epochs without improvement after which
            training stops, an integer >= 0. Defaults to `5`.
        min_delta: the smallest change that counts as an improvement, a
            number >= 0. Defaults to `0.0`.
        mode: `"min"`, `"max"` or `"auto"` (the direction is inferred from
            the metric, as in Keras). Defaults to `"auto"`.
        restore_best_weights: whether to leave the best epoch's weights in
            the model at the end of `fit`. Defaults to `True`.
        start_from_epoch: the number of warm-up epochs during which no
            improvement is expected (not counted, never "best"), an integer
            >= 0. Divergence stops training during warm-up too. Defaults
            to `0`.
        baseline: as in Keras: training stops unless the monitored value
            beats this baseline within `patience` epochs. Defaults to `None`.
        verbose: `0` (silent) or `1` (print why training stopped and which
            epoch's weights were restored). Defaults to `1`.

    Attributes:
        stop_reason: after `fit`, a sentence saying why training ended
            (patience exhausted, divergence, or all epochs done) and which
            weights the model holds; `None` before `fit`.
        stopped_early: whether this callback stopped training.
        stopped_epoch: the 0-based epoch at which it stopped (`0` when it
            did not stop, as in Keras).
        best_epoch: the 0-based epoch of the best finite value, or `None`.
        best: the best finite monitored value, or `None`.

    Example:

    In `fit`: `model.fit(x, y, validation_data=(xv, yv), epochs=200,
    callbacks=[stop])`, then `print(stop.stop_reason)`. Here its hooks are
    called with the logs `fit` would pass:

    >>> import keras, keras_training_kit as ktk
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> stop = ktk.callbacks.EarlyStopping(patience=2, verbose=0)
    >>> stop.set_model(model)
    >>> model.stop_training = False  # what `fit` sets before the first epoch
    >>> stop.on_train_begin()
    >>> for epoch, val_loss in enumerate([0.9, 0.5, 0.6, 0.7, 0.8]):
    ...     stop.on_epoch_end(epoch, {"val_loss": val_loss})
    ...     if model.stop_training:
    ...         break
    >>> stop.on_train_end()
    >>> stop.stopped_epoch + 1, stop.best_epoch + 1   # 1-based, as printed
    (4, 2)
    >>> stop.stop_reason.split(" (")[0]
    'Epoch 4: early stopping, no improvement of val_loss for 2 epochs'

    Reference:
        - [Prechelt, Early Stopping - But When?, 1998](
          https://doi.org/10.1007/3-540-49430-8_3).
        - [Goodfellow et al., Deep Learning, 2016, §7.8](
          https://www.deeplearningbook.org/contents/regularization.html).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
        start_from_epoch: int = 0,
        baseline: float | None = None,
        verbose: int = 1,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                "Argument `monitor` must be the non-empty name of a logged "
                f"quantity. Received: monitor={monitor!r}"
            )
        v.check_positive_int("patience", patience, minimum=0)
        v.check_non_negative("min_delta", min_delta)
        v.check_choice("mode", mode, ("auto", "min", "max"))
        v.check_positive_int("start_from_epoch", start_from_epoch, minimum=0)
        if baseline is not None:
            v.check_range("baseline", baseline)
        v.check_choice("verbose", verbose, (0, 1, 2))
        if not isinstance(restore_best_weights, bool):
            raise ValueError(
                "Argument `restore_best_weights` must be a bool. "
                f"Received: restore_best_weights={restore_best_weights!r}"
            )
        super().__init__(
            monitor=monitor,
            min_delta=min_delta,
            patience=patience,
            verbose=verbose,
            mode=mode,
            baseline=baseline,
            restore_best_weights=restore_best_weights,
            start_from_epoch=start_from_epoch,
        )
        # Keras stores |min_delta| and flips its sign once per instance when
        # it sets up `monitor_op`; keep the argument for `get_config`.
        self._min_delta_arg = min_delta
        self.stop_reason: str | None = None
        self.stopped_early = False
        self.best_epoch: int | None = None
        self._reason_code: str | None = None
        self._initial_weights: list | None = None
        self._last_epoch: int | None = None
        self._bad: dict = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self.best_epoch = None
        self.stop_reason = None
        self.stopped_early = False
        self._reason_code = None
        self._last_epoch = None
        self._bad = {}
        # A run that diverges before any finite epoch falls back to these.
        self._initial_weights = (
            self.model.get_weights() if self.restore_best_weights else None
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            # Delay setup until the model's metrics are all built (Keras).
            _compat.set_monitor_op(self)
        logs = logs or {}
        self._last_epoch = epoch
        current = _numerics.as_float(self.get_monitor_value(logs))
        bad = _numerics.nonfinite_logs(
            logs, (*_numerics.LOSS_KEYS, self.monitor)
        )
        weights = None
        if not bad and current is not None and self.restore_best_weights:
            if epoch >= self.start_from_epoch and self._improves(current):
                weights = self.model.get_weights()
                if not _numerics.all_finite(weights):
                    bad = {"weights": float("nan")}
        if bad:
            self._stop(epoch, "diverged", bad=bad)
            return
        if current is None or epoch < self.start_from_epoch:
            return

        self.wait += 1
        if self._improves(current):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = weights
            # Keras: restart the wait only when the baseline is beaten too.
            if self.baseline is None or _compat.is_improvement(
                self, current, self.baseline
            ):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self._stop(epoch, "patience")

    def on_train_end(self, logs: dict | None = None) -> None:
        restored = None
        if self.restore_best_weights:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)
                restored = f"the weights of epoch {self.best_epoch + 1}"
            elif (
                self._reason_code == "diverged"
                and self._initial_weights is not None
            ):
                self.model.set_weights(self._initial_weights)
                restored = "the weights from before training"
        self.stop_reason = self._describe(restored)
        self._initial_weights = None
        if self.verbose > 0:
            _print(self.stop_reason)

    def get_config(self) -> dict:
        return {
            "monitor": self.monitor,
            "patience": self.patience,
            "min_delta": self._min_delta_arg,
            "mode": self.mode,
            "restore_best_weights": self.restore_best_weights,
            "start_from_epoch": self.start_from_epoch,
            "baseline": self.baseline,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config: dict) -> EarlyStopping:
        return cls(**config)

    def _improves(self, current: float) -> bool:
        return _compat.is_improvement(self, current, self.best)

    def _stop(self, epoch: int, code: str, bad: dict | None = None) -> None:
        self.model.stop_training = True
        self.stopped_epoch = epoch
        self.stopped_early = True
        self._reason_code = code
        self._bad = bad or {}

    def _describe(self, restored: str | None) -> str:
        best = (
            f"best {self.monitor} {self.best:.4g} at epoch "
            f"{self.best_epoch + 1}"
            if self.best_epoch is not None
            else f"no finite {self.monitor} recorded"
        )
        if self._reason_code == "diverged":
            what = ", ".join(
                f"{k}={x}" for k, x in sorted(self._bad.items())
            )
            text = (
                f"Epoch {self.stopped_epoch + 1}: training diverged ({what}); "
                f"stopped at once ({best})."
            )
        elif self._reason_code == "patience":
            text = (
                f"Epoch {self.stopped_epoch + 1}: early stopping, no "
                f"improvement of {self.monitor} for {self.wait} epochs "
                f"(patience={self.patience}, min_delta="
                f"{self._min_delta_arg}; {best})."
            )
        elif self._last_epoch is None:
            text = "Training ended before the first epoch was complete."
        else:
            text = (
                f"Epoch {self._last_epoch + 1}: training ended without early "
                f"stopping ({best})."
            )
        if restored is not None:
            text += f" Restored {restored}."
        elif self.restore_best_weights:
            text += " No weights restored: no epoch was monitored."
        return text
