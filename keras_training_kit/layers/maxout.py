"""Maxout: the maximum over `pieces` affine maps (Goodfellow et al. 2013)."""

from __future__ import annotations

import keras
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register


@register(
    "layer", example={"units": 4, "pieces": 3}, input_shape=(6,)
)
class Maxout(keras.layers.Layer):
    """Maxout unit: a learned piecewise-linear activation.

    Each of the `units` outputs is the largest of `pieces` affine maps of
    the input (last axis), the course's `max(w₁ᵀx + b₁, w₂ᵀx + b₂)`:

    ```
    z_k = x @ W_k + b_k           for k = 1..pieces
    y   = max_k z_k               (elementwise over units)
    ```

    All pieces share one `kernel` of shape `(input_dim, pieces * units)`
    (one matmul, then a max over the `pieces` axis), so
    `ktk.regularizers.penalize` finds and penalizes it like a Dense kernel.
    ReLU is the special case `pieces=2` with one map fixed at zero; with
    `pieces=1` the layer is a plain linear `Dense`.

    Args:
        units: positive int, number of outputs.
        pieces: int >= 1, number of affine maps per unit (the issue's
            "pieces < 1 is invalid"; 1 degenerates to `Dense`).
            Defaults to `2`.
        use_bias: whether the maps have biases `b_k`. Defaults to `True`.
        kernel_initializer: as in `Dense`. Defaults to `"glorot_uniform"`.
        bias_initializer: as in `Dense`. Defaults to `"zeros"`.
        kernel_regularizer: as in `Dense`. Defaults to `None`.
        bias_regularizer: as in `Dense`. Defaults to `None`.
        activity_regularizer: as in `Dense`. Defaults to `None`.
        kernel_constraint: as in `Dense`, applied to the whole kernel.
            Defaults to `None`.
        bias_constraint: as in `Dense`. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input shape: `(..., input_dim)`. Output shape: `(..., units)`.

    Example:

    >>> import numpy as np, keras_training_kit as ktk
    >>> layer = ktk.layers.Maxout(units=16, pieces=3)
    >>> tuple(layer(np.zeros((8, 10), "float32")).shape)
    (8, 16)

    Reference:
        - [Goodfellow et al., 2013](https://arxiv.org/abs/1302.4389)
    """

    def __init__(
        self,
        units: int,
        pieces: int = 2,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = v.check_positive_int("units", units)
        self.pieces = v.check_positive_int("pieces", pieces)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "The last dimension of the inputs to `Maxout` must be "
                f"defined. Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.pieces * self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.pieces * self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs):
        z = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = ops.add(z, self.bias)
        # Column j of the kernel belongs to piece j // units, unit j % units.
        shape = ops.shape(z)[:-1] + (self.pieces, self.units)
        return ops.max(ops.reshape(z, shape), axis=-2)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict:
        base_config = super().get_config()
        config = {
            "units": self.units,
            "pieces": self.pieces,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "activity_regularizer": keras.regularizers.serialize(
                self.activity_regularizer
            ),
            "kernel_constraint": keras.constraints.serialize(
                self.kernel_constraint
            ),
            "bias_constraint": keras.constraints.serialize(
                self.bias_constraint
            ),
        }
        return {**base_config, **config}
