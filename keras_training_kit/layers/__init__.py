"""ktk.layers."""

from keras_training_kit.layers.batch_normalization import (  # noqa: F401
    BatchNormalization,
)
from keras_training_kit.layers.recalibrate import (  # noqa: F401
    recalibrate_batch_norm,
)
from keras_training_kit.layers.activations import leaky_relu  # noqa: F401
from keras_training_kit.layers.dropout import Dropout  # noqa: F401
from keras_training_kit.layers.maxout import Maxout  # noqa: F401
from keras_training_kit.layers.mc_dropout import (  # noqa: F401
    predict_with_dropout,
)
