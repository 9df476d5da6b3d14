"""The course's activations that Keras lacks in the course's form.

Keras already has what the course's topic 5 needs, except for one default:

- ELU, `x if x >= 0 else α(eˣ − 1)`: use `keras.activations.elu` or
  `keras.layers.ELU(alpha=1.0)`; they compute exactly the course's
  formula (tested in `tests/layers/test_maxout.py`).
- Leaky ReLU, `max(0.1x, x)`: `keras.layers.LeakyReLU(negative_slope=0.1)`
  computes it, but Keras' defaults are 0.3 (the layer) and 0.2 (the
  function). `leaky_relu` below is the course's version as a plain,
  registered activation *function*, so `Dense(..., activation=leaky_relu)`
  uses slope 0.1 and the model still loads with `safe_mode=True`.
- Maxout: `ktk.layers.Maxout`.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
def leaky_relu(x, negative_slope: float = 0.1):
    """Leaky ReLU with the course's default slope: `max(0.1x, x)`.

    ```
    leaky_relu(x) = x                     if x >= 0
                    negative_slope * x    otherwise
    ```

    Same as `keras.activations.leaky_relu(x, negative_slope=0.1)`; only
    the default differs (Keras: 0.2). Registered under the package
    `keras_training_kit`, so a model using it saves and loads with
    `safe_mode=True` and no `custom_objects`.

    Args:
        x: input tensor.
        negative_slope: slope for `x < 0`. Defaults to `0.1`.

    Example:

    >>> import keras, keras_training_kit as ktk
    >>> layer = keras.layers.Dense(8, activation=ktk.layers.leaky_relu)
    >>> [round(float(v), 6) for v in ktk.layers.leaky_relu(
    ...     keras.ops.convert_to_tensor([-2.0, 3.0]))]
    [-0.2, 3.0]

    Reference:
        - [Maas et al., 2013](
          https://ai.stanford.edu/~amaas/papers/relu_hybrid_icml2013_final.pdf)
    """
    if isinstance(negative_slope, (int, float)):  # as keras.layers.LeakyReLU
        v.check_non_negative("negative_slope", negative_slope)
    return ops.leaky_relu(x, negative_slope=negative_slope)
