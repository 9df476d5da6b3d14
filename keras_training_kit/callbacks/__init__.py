"""ktk.callbacks: babysitting `fit`.

`TrainingDiagnosis` (why a run trains badly, with numbers and the remedy),
`EarlyStopping` (Keras' semantics, best weights restored, NaN-safe),
`LRFinder` (Smith's learning-rate range test) and `LossCurvePlot`.
"""

from keras_training_kit.callbacks.early_stopping import EarlyStopping
from keras_training_kit.callbacks.loss_curve_plot import LossCurvePlot
from keras_training_kit.callbacks.lr_finder import LRFinder
from keras_training_kit.callbacks.training_diagnosis import TrainingDiagnosis

__all__ = ["EarlyStopping", "LRFinder", "LossCurvePlot", "TrainingDiagnosis"]
