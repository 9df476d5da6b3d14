"""ktk.diagnosis: why a run trains badly, with numbers and the remedy.

Data flows one way: `TrainingDiagnosis` (or `RunRecord.from_history` for a
finished run) fills a plain `RunRecord`; `analyze(record)` is pure and
returns an immutable `Diagnosis` of `Finding` objects, root cause first,
each with its `remedies`; renderers draw them (`report()` text, JSON,
`plot_findings` PNG, HTML). `diagnose(history)` is the offline entry point
(a `History`, a dict of per-epoch lists or a `CSVLogger` file); `repair`
applies the remedies, retrains and verifies.
"""

import os as _os

from keras_training_kit.diagnosis.analysis import Diagnosis, analyze, diagnose
from keras_training_kit.diagnosis.finding import (
    ADVICE,
    CODES,
    REMEDIES,
    Finding,
    Remedy,
)
from keras_training_kit.diagnosis.history import load_history, read_csv_log
from keras_training_kit.diagnosis.plot import loss_figure, plot_findings
from keras_training_kit.diagnosis.record import RunRecord
from keras_training_kit.diagnosis.rules import (
    chance_loss,
    check_dead_units,
    check_diverged,
    check_gradients,
    check_initial_loss,
    check_loss_output,
    check_lr_too_high,
    check_noisy_loss,
    check_overfitting,
    check_progress,
    check_saturated_units,
    check_unscaled_inputs,
    check_unscaled_targets,
    constant_predictor_loss,
    recover_batch_losses,
)



def __getattr__(name):
    # `repair` needs Keras; the rest of this package is NumPy only, so that
    # reading a CSV log (`ktk diagnose`) never imports TensorFlow. Under
    # KERAS_TRAINING_KIT_LAZY=1 it is imported on first use.
    if name in ("repair", "RepairReport"):
        import importlib

        module = importlib.import_module(f"{__name__}.repair")
        # The subpackage import bound `repair` to the module: rebind it.
        globals().update(repair=module.repair, RepairReport=module.RepairReport)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if _os.environ.get("KERAS_TRAINING_KIT_LAZY") != "1":
    from keras_training_kit.diagnosis.repair import RepairReport, repair


__all__ = [
    "ADVICE",
    "CODES",
    "REMEDIES",
    "Diagnosis",
    "Finding",
    "Remedy",
    "RepairReport",
    "RunRecord",
    "analyze",
    "chance_loss",
    "check_dead_units",
    "check_diverged",
    "check_gradients",
    "check_initial_loss",
    "check_loss_output",
    "check_lr_too_high",
    "check_noisy_loss",
    "check_overfitting",
    "check_progress",
    "check_saturated_units",
    "check_unscaled_inputs",
    "check_unscaled_targets",
    "constant_predictor_loss",
    "diagnose",
    "load_history",
    "loss_figure",
    "plot_findings",
    "read_csv_log",
    "recover_batch_losses",
    "repair",
]
