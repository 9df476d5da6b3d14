"""ktk.regularizers: the course's L1/L2 penalties and model-wide `penalize`.

`L2` carries the course's one-half, `(λ/2)‖w‖²`, so its gradient is `λw`.
"""

from keras_training_kit.regularizers.l1 import L1
from keras_training_kit.regularizers.l1l2 import L1L2
from keras_training_kit.regularizers.l2 import L2
from keras_training_kit.regularizers.penalize import penalize

__all__ = ["L1", "L1L2", "L2", "penalize"]
