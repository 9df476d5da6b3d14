"""`ktk.diagnosis.repair`: apply the course's remedy, retrain, verify.

`repair(build_model, x, y, validation_data=...)` closes the course's cycle:
it trains, diagnoses, applies the root cause's remedy to a rebuilt copy,
retrains and keeps the change only when the finding is gone and the
objective improved by more than the run-to-run noise.
"""

from keras_training_kit.diagnosis.repair._loop import repair
from keras_training_kit.diagnosis.repair.report import RepairReport, Run

__all__ = ["RepairReport", "Run", "repair"]
