"""ktk.layers: batch normalization, dropout, Maxout, and their helpers.

`BatchNormalization` (Ioffe & Szegedy Algorithm 1) and
`recalibrate_batch_norm` (exact population statistics); `Dropout` in both
scaling conventions and `predict_with_dropout` (Monte-Carlo ensemble);
`Maxout`; `leaky_relu` with the course's slope 0.1.
"""

from keras_training_kit.layers.activations import leaky_relu
from keras_training_kit.layers.batch_normalization import BatchNormalization
from keras_training_kit.layers.dropout import Dropout
from keras_training_kit.layers.maxout import Maxout
from keras_training_kit.layers.mc_dropout import predict_with_dropout
from keras_training_kit.layers.recalibrate import recalibrate_batch_norm

__all__ = [
    "BatchNormalization",
    "Dropout",
    "Maxout",
    "leaky_relu",
    "predict_with_dropout",
    "recalibrate_batch_norm",
]
