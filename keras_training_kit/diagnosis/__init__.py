"""ktk.diagnosis: why a run trains badly, with numbers and the remedy.

`Finding` is one result; `diagnose(history)` analyzes a finished run offline
(a `History`, a dict of per-epoch lists or a `CSVLogger` file); the rule
functions are pure and work on plain arrays; `plot_findings` draws the
curves with the findings marked (matplotlib imported only when called).
"""

from keras_training_kit.diagnosis.analysis import (
    Diagnosis,
    analyze,
    diagnose,
    load_history,
    read_csv_log,
)
from keras_training_kit.diagnosis.finding import ADVICE, CODES, Finding
from keras_training_kit.diagnosis.plot import plot_findings
from keras_training_kit.diagnosis.rules import (
    chance_loss,
    check_dead_units,
    check_diverged,
    check_gradients,
    check_initial_loss,
    check_lr_too_high,
    check_lr_too_low,
    check_noisy_loss,
    check_overfitting,
    check_saturated_units,
    check_underfitting,
    check_unscaled_inputs,
    constant_predictor_loss,
    recover_batch_losses,
)

__all__ = [
    "ADVICE",
    "CODES",
    "Diagnosis",
    "Finding",
    "analyze",
    "chance_loss",
    "check_dead_units",
    "check_diverged",
    "check_gradients",
    "check_initial_loss",
    "check_lr_too_high",
    "check_lr_too_low",
    "check_noisy_loss",
    "check_overfitting",
    "check_saturated_units",
    "check_underfitting",
    "check_unscaled_inputs",
    "constant_predictor_loss",
    "diagnose",
    "load_history",
    "plot_findings",
    "read_csv_log",
    "recover_batch_losses",
]
