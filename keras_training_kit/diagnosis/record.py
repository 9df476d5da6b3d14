"""`RunRecord`: the plain data a training run leaves behind.

Data flows one way: the recording callback (`TrainingDiagnosis`) or an
offline reader (`RunRecord.from_history`, a History, a dict or a CSV log)
fills a `RunRecord`; `ktk.diagnosis.analyze(record)` is a pure function of
it; the immutable findings it returns are rendered (text, JSON, PNG, HTML,
TensorBoard). A record holds only numbers, strings, lists and dicts, so it
round-trips through JSON (`to_dict` / `from_dict`).

A value that was not measured is absent, never NaN: an epoch without
validation (`validation_freq`) has no `val_loss` in its logs; a NaN in a
record is a NaN the run produced.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_training_kit.diagnosis._json import plain as _plain
from keras_training_kit.diagnosis._json import unplain as _unplain


@dataclasses.dataclass
class RunRecord:
    """Everything the diagnosis knows about one `fit`.

    Attributes:
        epochs: the Keras epoch index (0-based; starts at `initial_epoch`)
            of every finished epoch.
        logs: per finished epoch, the logged numbers of that epoch only.
        batch_losses: per epoch, the losses of its batches (recovered from
            Keras' running mean; with `steps_per_execution > 1`, one value
            per execution).
        batches_per_loss: how many batches each of those values averages
            (`steps_per_execution`; an epoch's last may cover fewer).
        learning_rates: per epoch, the optimizer's learning rate at its end.
        initial_loss: the loss at initialization: on the probe batch before
            training, else the loss of the very first batch.
        initial_penalty: the weight-regularization penalty at the initial
            weights, which Keras adds to every logged loss (`initial_loss`
            is the data loss alone).
        baseline_loss: the constant predictor's loss on the targets.
        chance_loss: the loss of a freshly initialized net (`chance_loss`):
            `log C` for a C-class cross-entropy, `mean(y^2) + 1` for MSE.
        loss: `{"name", "from_logits"}` of the compiled loss, if single.
        head: the output layer: `{"layer", "activation", "units"}`.
        targets: summary of a target sample (`min`, `max`, `mean`, `std`,
            `integer`, `unique`, `shape`).
        inputs: summary of an input sample (`mean`, `std` per feature,
            `nonfinite`, `rows_nonfinite`, `rows`, `scanned`).
        probes: per probe, its step, epoch and statistics (see
            `ktk.diagnosis.probe.Probe`), plus `update_ratio` per layer.
        layers: the kernel-bearing layers, in forward order.
        monitored: activation kind per monitored hidden layer.
        units: units per monitored layer.
        neighbours: the trained model's error on the input sample against
            k nearest neighbours' leave-one-out error on it
            (`ktk.diagnosis._neighbours.compare`).
        nonfinite_weights: where weights first became NaN/Inf:
            `{"epoch", "step", "layers"}`.
        optimizer: `{"class", "learning_rate"}`.
        early_stopping: `{"best_epoch", "stopped_epoch", "restored"}` of an
            early-stopping callback in the same `fit`.
        steps_per_epoch: batches per epoch, if known.
        backend: the Keras backend of the run.
        notes: what could not be measured, in words.
    """

    epochs: list = dataclasses.field(default_factory=list)
    logs: list = dataclasses.field(default_factory=list)
    batch_losses: list = dataclasses.field(default_factory=list)
    batches_per_loss: int = 1
    learning_rates: list = dataclasses.field(default_factory=list)
    initial_loss: float | None = None
    initial_penalty: float | None = None
    baseline_loss: float | None = None
    chance_loss: float | None = None
    loss: dict | None = None
    head: dict | None = None
    targets: dict | None = None
    inputs: dict | None = None
    probes: list = dataclasses.field(default_factory=list)
    layers: list = dataclasses.field(default_factory=list)
    monitored: dict = dataclasses.field(default_factory=dict)
    units: dict = dataclasses.field(default_factory=dict)
    neighbours: dict | None = None
    nonfinite_weights: dict | None = None
    optimizer: dict | None = None
    early_stopping: dict | None = None
    steps_per_epoch: int | None = None
    backend: str | None = None
    notes: list = dataclasses.field(default_factory=list)

    # -- views --------------------------------------------------------------

    @property
    def num_epochs(self) -> int:
        return len(self.logs)

    def curve(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """`(epochs, values)` of one logged quantity, where it was logged."""
        pairs = [
            (e, float(log[key]))
            for e, log in zip(self.epochs, self.logs)
            if key in log and log[key] is not None
        ]
        if not pairs:
            return np.zeros(0, dtype="int64"), np.zeros(0)
        e, values = zip(*pairs)
        return np.asarray(e, dtype="int64"), np.asarray(values, "float64")

    def keys(self) -> list[str]:
        """Every logged quantity, in first-seen order."""
        seen: dict[str, None] = {}
        for log in self.logs:
            seen.update(dict.fromkeys(log))
        return list(seen)

    @property
    def history(self) -> dict[str, list]:
        """Per-epoch lists aligned with `epochs`; `None` where not logged."""
        return {
            key: [log.get(key) for log in self.logs] for key in self.keys()
        }

    def all_batch_losses(self) -> np.ndarray:
        """Every recorded batch loss of the run, in order."""
        parts = [np.asarray(b, dtype="float64") for b in self.batch_losses]
        return np.concatenate(parts) if parts else np.zeros(0)

    # -- serialization ------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON-friendly data (NaN/Inf as strings)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _unplain(v) for k, v in data.items() if k in fields})

    @classmethod
    def from_history(
        cls, history: dict[str, list], baseline_loss: float | None = None
    ) -> RunRecord:
        """A record from per-epoch lists (a History's dict or a CSV log).

        Lists shorter than `loss` come from `validation_freq = f`: Keras
        validates after epochs `f-1, 2f-1, ...` (0-based), so entry `i` is
        placed at epoch `(i + 1) f - 1`. `None` entries are "not logged".
        """
        loss = list(history.get("loss", []))
        n = len(loss)
        logs: list[dict] = [{} for _ in range(n)]
        for key, values in history.items():
            values = list(values)
            if key in ("epoch",) or not values:
                continue
            if len(values) >= n:
                where = range(n)
            else:
                freq = max(1, n // len(values))
                where = [(i + 1) * freq - 1 for i in range(len(values))]
            for i, value in zip(where, values):
                if value is not None and i < n:
                    logs[i][key] = float(value)
        return cls(
            epochs=list(range(n)), logs=logs, baseline_loss=baseline_loss
        )
