"""The one batch-loss recovery of the kit.

Keras 3 logs, at the end of batch `k` of an epoch (1-based), the running mean
`m_k` of the batch losses so far, so the loss of the batches since the
previous log is

```
l = (s_k m_k - s_j m_j) / (s_k - s_j)
```

with `s` the number of batches seen in the epoch at each log (`s_k = k`
when every batch is logged; with `steps_per_execution = n` Keras logs every
`n` batches and `l` is the mean over those `n`). `TrainingDiagnosis` and
`LRFinder` both use `BatchLossTracker`; `recover` is the same formula for
a whole epoch at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def recover(
    running_means: Sequence[float], steps: Sequence[int] | None = None
) -> np.ndarray:
    """Per-batch losses of one epoch from Keras 3's logged running means.

    Args:
        running_means: the logged running means of one epoch.
        steps: cumulative batch counts at each log. Defaults to 1, 2, 3...

    Returns:
        A float64 array: the loss of the batches since each previous log.

    Example:

    >>> recover([1.0, 1.5, 2.0]).tolist()
    [1.0, 2.0, 3.0]
    """
    m = np.asarray(running_means, dtype="float64").reshape(-1)
    if steps is None:
        s = np.arange(1, m.size + 1, dtype="float64")
    else:
        s = np.asarray(steps, dtype="float64").reshape(-1)
    if s.size != m.size:
        raise ValueError(
            "`steps` must have one entry per running mean. Received: "
            f"{s.size} steps for {m.size} means"
        )
    total = s * m
    prev_total = np.concatenate([[0.0], total[:-1]])
    prev_s = np.concatenate([[0.0], s[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (total - prev_total) / np.maximum(s - prev_s, 1.0)
    # A non-finite running mean is reported as is (a diverged batch).
    return np.where(np.isfinite(m), out, m)


class BatchLossTracker:
    """Undoes Keras' running mean, one `on_train_batch_end` at a time.

    Call `start_epoch()` in `on_epoch_begin` and `update(batch, logs["loss"])`
    in `on_train_batch_end`; `update` returns the loss of the batches since
    the previous call and how many batches that was.

    Example:

    >>> t = BatchLossTracker()
    >>> t.start_epoch()
    >>> [t.update(b, m)[0] for b, m in enumerate([1.0, 1.5, 2.0])]
    [1.0, 2.0, 3.0]
    """

    def __init__(self) -> None:
        self.start_epoch()

    def start_epoch(self) -> None:
        self._seen, self._mean = 0, 0.0

    def update(self, batch: int, mean: float) -> tuple[float, int]:
        """The loss since the last log, and the number of batches it covers.

        Args:
            batch: the 0-based batch index Keras passes to the hook (the
                last batch of the execution with `steps_per_execution`).
            mean: the logged running mean `logs["loss"]`.
        """
        seen = int(batch) + 1
        if seen <= self._seen:  # a new epoch without `start_epoch`
            self.start_epoch()
        count = seen - self._seen
        mean = float(mean)
        if math.isfinite(mean):
            value = (seen * mean - self._seen * self._mean) / count
        else:
            value = mean
        self._seen, self._mean = seen, mean
        return value, count
