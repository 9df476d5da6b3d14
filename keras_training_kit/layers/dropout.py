"""Dropout in both of the course's conventions: scale at train or at test."""

from __future__ import annotations

import keras
from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register


@register(
    "layer",
    example={"rate": 0.5, "scale_at": "test", "seed": 1},
    input_shape=(8,),
)
class Dropout(keras.layers.Layer):
    """Dropout: each unit is dropped with probability `p` at each step.

    A fresh Bernoulli mask is drawn every call (every mini-batch), from a
    `keras.random.SeedGenerator`, so masks differ between steps even under
    `jit_compile=True`. Two conventions give the same *expected*
    activation in training and at inference:

    ```
    scale_at="train" (inverted dropout, Keras' Dropout):
        training:  y = x * m / (1 - p),   m ~ Bernoulli(1 - p)
        inference: y = x
    scale_at="test" (the course's slide):
        training:  y = x * m
        inference: y = x * (1 - p)   # "multiply the weights by 1 - p"
    ```

    Scaling the activations by `1 - p` is the same as scaling the weights
    of the next layer by `1 - p`. The scaled network approximates the
    average of the ensemble of sub-networks that dropout samples (exactly
    so for a linear next layer); `ktk.layers.predict_with_dropout` gives
    the Monte-Carlo ensemble average itself.

    Args:
        rate: float in [0, 1), the drop probability `p`.
        scale_at: `"train"` or `"test"`, where the `1 - p` factor is
            applied. Defaults to `"train"`.
        noise_shape: 1D tuple of ints, the shape of the binary mask that is
            broadcast against the inputs; `None` entries take the input's
            size, as in `keras.layers.Dropout`. E.g. `(None, 1, features)`
            drops the same features at every timestep. Defaults to `None`
            (one mask value per input element).
        seed: int, seed of the mask generator. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np, keras_training_kit as ktk
    >>> layer = ktk.layers.Dropout(0.5, scale_at="test", seed=0)
    >>> x = np.ones((2, 4), "float32")
    >>> np.asarray(layer(x, training=False)).tolist()   # x (1 - p) at test
    [[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]

    Reference:
        - [Srivastava et al., 2014](
          https://jmlr.org/papers/v15/srivastava14a.html)
    """

    def __init__(
        self,
        rate: float,
        scale_at: str = "train",
        noise_shape=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rate = v.check_unit_interval("rate", rate)
        self.scale_at = v.check_choice("scale_at", scale_at, ("train", "test"))
        self.noise_shape = _check_noise_shape(noise_shape)
        if seed is not None:
            seed = v.check_positive_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if self.rate == 0.0:
            return inputs
        if not training:
            if self.scale_at == "train":
                return inputs
            return inputs * ops.cast(1.0 - self.rate, inputs.dtype)
        if self.scale_at == "train":
            # Same kernel as keras.layers.Dropout: same speed.
            return keras.random.dropout(
                inputs,
                self.rate,
                noise_shape=self.noise_shape,
                seed=self.seed_generator,
            )
        shape = _concrete_noise_shape(inputs, self.noise_shape)
        keep = keras.random.uniform(shape, seed=self.seed_generator)
        keep = ops.greater_equal(keep, self.rate)
        return ops.where(keep, inputs, ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        base_config = super().get_config()
        config = {
            "rate": self.rate,
            "scale_at": self.scale_at,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
        }
        return {**base_config, **config}


def _check_noise_shape(noise_shape):
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str) or not hasattr(noise_shape, "__iter__"):
        raise ValueError(
            "Argument `noise_shape` must be a tuple of positive integers or "
            f"None. Received: noise_shape={noise_shape!r}"
        )
    noise_shape = tuple(noise_shape)
    for dim in noise_shape:
        if dim is not None and (
            isinstance(dim, bool) or not isinstance(dim, int) or dim < 1
        ):
            raise ValueError(
                "Argument `noise_shape` must be a tuple of positive "
                f"integers or None. Received: noise_shape={noise_shape!r}"
            )
    return noise_shape


def _concrete_noise_shape(inputs, noise_shape):
    shape = ops.shape(inputs)
    if noise_shape is None:
        return shape
    if len(noise_shape) != len(shape):
        raise ValueError(
            "Argument `noise_shape` must have the rank of the inputs. "
            f"Received: noise_shape={noise_shape} for inputs of shape "
            f"{shape}"
        )
    return tuple(
        shape[i] if dim is None else dim for i, dim in enumerate(noise_shape)
    )
