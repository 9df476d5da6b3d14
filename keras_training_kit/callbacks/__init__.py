"""ktk.callbacks."""

from keras_training_kit.callbacks.early_stopping import EarlyStopping
from keras_training_kit.callbacks.loss_curve_plot import LossCurvePlot
from keras_training_kit.callbacks.lr_finder import LRFinder
from keras_training_kit.callbacks.training_diagnosis import TrainingDiagnosis
