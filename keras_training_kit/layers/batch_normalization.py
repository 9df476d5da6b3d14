"""Batch normalization, written from Ioffe & Szegedy (2015), Algorithm 1.

Reference: [Ioffe and Szegedy, 2015](https://arxiv.org/abs/1502.03167).
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import keras
from keras import constraints, initializers, ops, regularizers

from keras_training_kit import _validation as v
from keras_training_kit._registry import register


def _check_axis(axis: Any) -> int | list[int]:
    """`axis` is an int or a non-empty list of distinct ints."""
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        return int(axis)
    if isinstance(axis, (list, tuple)) and axis and all(
        isinstance(a, numbers.Integral) and not isinstance(a, bool)
        for a in axis
    ):
        if len(set(int(a) for a in axis)) == len(axis):
            return [int(a) for a in axis]
    raise ValueError(
        "Argument `axis` must be an integer or a non-empty list of distinct "
        f"integers. Received: axis={axis!r}"
    )


@register("layer", example={"momentum": 0.9}, input_shape=(8,))
class BatchNormalization(keras.layers.Layer):
    """Batch normalization (Ioffe & Szegedy 2015, Algorithm 1).

    In training, each channel is normalized with the statistics of the
    current mini-batch `B = {x_1..x_m}` (all positions except `axis`), then
    scaled and shifted by the learned `gamma` and `beta`:

    ```
    mu_B     = (1/m) * sum_i x_i
    sigma2_B = (1/m) * sum_i (x_i - mu_B)**2
    x_hat_i  = (x_i - mu_B) / sqrt(sigma2_B + epsilon)
    y_i      = gamma * x_hat_i + beta
    moving_mean     = momentum * moving_mean     + (1 - momentum) * mu_B
    moving_variance = momentum * moving_variance + (1 - momentum) * sigma2_B
    ```

    At test time there is no batch: the course's ideal is the mean and
    variance of the whole training set (see
    `ktk.layers.recalibrate_batch_norm`), in practice the moving averages
    above are used in place of `mu_B` and `sigma2_B`. Insert the layer after a
    fully connected or convolutional layer, before the nonlinearity.

    The batch variance is the biased one (divided by `m`), as in the paper's
    Algorithm 1 and in `keras.layers.BatchNormalization`, whose outputs and
    moving statistics this layer reproduces. With a `mask` (rank of the
    inputs minus one), masked positions are left out of `mu_B` and
    `sigma2_B`. Under mixed precision the statistics are computed in float32
    and the variables stay float32; the output has the layer's compute dtype.
    Setting `trainable = False` freezes the layer in inference mode, as in
    Keras.

    Args:
        axis: Integer or list of integers, the feature axis (or axes) that
            keep their own statistics; all other axes are reduced. For a
            `Conv2D` output in `channels_last` this is `-1`, for
            `channels_first` it is `1`. Defaults to `-1`.
        momentum: Momentum of the moving averages, in [0, 1).
            Defaults to `0.99`.
        epsilon: Small number added to the variance, > 0. Defaults to `1e-3`.
        center: If `True`, add the learned offset `beta`. Defaults to `True`.
        scale: If `True`, multiply by the learned `gamma`.
            Defaults to `True`.
        beta_initializer: Initializer for `beta`. Defaults to `"zeros"`.
        gamma_initializer: Initializer for `gamma`. Defaults to `"ones"`.
        moving_mean_initializer: Initializer for the moving mean.
            Defaults to `"zeros"`.
        moving_variance_initializer: Initializer for the moving variance.
            Defaults to `"ones"`.
        beta_regularizer: Optional regularizer for `beta`.
        gamma_regularizer: Optional regularizer for `gamma`.
        beta_constraint: Optional constraint for `beta`.
        gamma_constraint: Optional constraint for `gamma`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Input tensor of any rank.
        training: Python boolean; `True` uses the mini-batch statistics and
            updates the moving averages, `False` uses the moving averages.
        mask: Optional boolean tensor with one dimension less than
            `inputs`; `False` positions do not count in the statistics.

    Example:

    >>> import keras
    >>> import keras_training_kit as ktk
    >>> model = keras.Sequential([
    ...     keras.Input((64,)),
    ...     keras.layers.Dense(32, use_bias=False),
    ...     ktk.layers.BatchNormalization(),
    ...     keras.layers.Activation("sigmoid"),
    ...     keras.layers.Dense(10, activation="softmax"),
    ... ])

    Reference:
        - [Ioffe and Szegedy, 2015](https://arxiv.org/abs/1502.03167).
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.axis = _check_axis(axis)
        self.momentum = v.check_unit_interval("momentum", momentum)
        self.epsilon = v.check_positive("epsilon", epsilon)
        if not isinstance(center, bool):
            raise ValueError(
                f"Argument `center` must be a bool. Received: center={center!r}"
            )
        if not isinstance(scale, bool):
            raise ValueError(
                f"Argument `scale` must be a bool. Received: scale={scale!r}"
            )
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(
            moving_variance_initializer
        )
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = None
        self.beta = None
        self.moving_mean = None
        self.moving_variance = None

    def _feature_axes(self, rank: int) -> list[int]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(
                    f"Axis {a} is out of bounds for an input of rank {rank}. "
                    f"Received: axis={self.axis}"
                )
        out = sorted(a % rank for a in axes)
        if len(set(out)) != len(out):
            raise ValueError(
                "Argument `axis` names the same axis twice for an input of "
                f"rank {rank}. Received: axis={self.axis}"
            )
        return out

    def build(self, input_shape: tuple) -> None:
        rank = len(input_shape)
        feature_axes = self._feature_axes(rank)
        for a in feature_axes:
            if input_shape[a] is None:
                raise ValueError(
                    f"The size of axis {a} of the input must be known to "
                    f"build {self.name}. Received: input_shape={input_shape}"
                )
        shape = tuple(input_shape[a] for a in feature_axes)
        self._reduction_axes = [i for i in range(rank) if i not in feature_axes]
        # Parameters broadcast against the inputs through this shape; None
        # when they already do (a single trailing feature axis).
        bshape = [1] * rank
        for a in feature_axes:
            bshape[a] = input_shape[a]
        self._broadcast_shape = (
            None if feature_axes == [rank - 1] else tuple(bshape)
        )
        if self.scale:
            self.gamma = self.add_weight(
                shape=shape,
                name="gamma",
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                trainable=True,
                autocast=False,
            )
        if self.center:
            self.beta = self.add_weight(
                shape=shape,
                name="beta",
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                trainable=True,
                autocast=False,
            )
        self.moving_mean = self.add_weight(
            shape=shape,
            name="moving_mean",
            initializer=self.moving_mean_initializer,
            trainable=False,
            autocast=False,
        )
        self.moving_variance = self.add_weight(
            shape=shape,
            name="moving_variance",
            initializer=self.moving_variance_initializer,
            trainable=False,
            autocast=False,
        )
        self.input_spec = keras.InputSpec(
            ndim=rank, axes={a: input_shape[a] for a in feature_axes}
        )

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        self._feature_axes(len(input_shape))
        return tuple(input_shape)

    def _broadcast(self, t: Any) -> Any:
        if self._broadcast_shape is None:
            return t
        return ops.reshape(t, self._broadcast_shape)

    def _moments(self, x: Any, mask: Any) -> tuple[Any, Any]:
        """Mini-batch mean and biased variance, in broadcastable shape."""
        axes = self._reduction_axes
        if mask is None:
            mean = ops.mean(x, axis=axes, keepdims=True)
            # The gradient through `mean` cancels in sum_i (x_i - mean)^2,
            # so stopping it is exact and saves work in the backward pass.
            variance = ops.mean(
                ops.square(x - ops.stop_gradient(mean)), axis=axes,
                keepdims=True,
            )
            return mean, variance
        if len(mask.shape) != len(x.shape) - 1:
            raise ValueError(
                "The mask must have one dimension less than the inputs. "
                f"Received: mask.shape={mask.shape}, inputs.shape={x.shape}"
            )
        keep = ops.broadcast_to(
            ops.expand_dims(ops.cast(mask, "bool"), -1), ops.shape(x)
        )
        # Same weighting as Keras: the small epsilon keeps an all-masked
        # batch finite.
        count = ops.sum(ops.cast(keep, x.dtype), axis=axes, keepdims=True)
        count = count + keras.config.epsilon()
        mean = ops.sum(ops.where(keep, x, 0), axis=axes, keepdims=True) / count
        dev = ops.where(keep, x - mean, 0)
        variance = ops.sum(ops.square(dev), axis=axes, keepdims=True) / count
        return mean, variance

    def call(self, inputs: Any, training: bool | None = None,
             mask: Any = None) -> Any:
        # float16/bfloat16 statistics overflow: compute in (at least) float32.
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        param_shape = tuple(self.moving_mean.shape)
        if training and self.trainable:
            mean, variance = self._moments(x, mask)
            batch_mean = ops.reshape(mean, param_shape)
            batch_var = ops.reshape(variance, param_shape)
            m = self.momentum
            moving_mean = ops.cast(self.moving_mean, dtype)
            moving_var = ops.cast(self.moving_variance, dtype)
            self.moving_mean.assign(moving_mean * m + batch_mean * (1.0 - m))
            self.moving_variance.assign(
                moving_var * m + batch_var * (1.0 - m)
            )
        else:
            mean = self._broadcast(ops.cast(self.moving_mean, dtype))
            variance = self._broadcast(ops.cast(self.moving_variance, dtype))
        # y = gamma * (x - mu) / sqrt(var + eps) + beta, folded into one
        # multiply-add per element: y = x * inv + (beta - mu * inv).
        inv = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * self._broadcast(ops.cast(self.gamma, dtype))
        shift = -mean * inv
        if self.center:
            shift = shift + self._broadcast(ops.cast(self.beta, dtype))
        outputs = x * inv + shift
        return ops.cast(outputs, self.compute_dtype)

    def get_config(self) -> dict:
        base_config = super().get_config()
        config = {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(
                self.moving_mean_initializer
            ),
            "moving_variance_initializer": initializers.serialize(
                self.moving_variance_initializer
            ),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }
        return {**base_config, **config}
