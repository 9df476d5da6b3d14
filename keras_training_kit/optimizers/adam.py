"""Adam: momentum plus RMSProp, with bias correction (Algorithm 1)."""

from __future__ import annotations

import math

from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.optimizers._base import KitOptimizer, with_base_args


@register("optimizer", example={"learning_rate": 0.01})
@with_base_args
class Adam(KitOptimizer):
    """Adam, exactly as Algorithm 1 of Kingma & Ba.

    RMSProp plus momentum, with both moving averages corrected for their
    start at zero (`t` counts updates from 1):

    ```python
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g ** 2
    m_hat = m / (1 - beta_1 ** t)
    v_hat = v / (1 - beta_2 ** t)
    w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)
    ```

    `keras.optimizers.Adam` adds its epsilon to the uncorrected `√v` (the
    paper's "ε hat"); ours is Algorithm 1's `ε`, like `torch.optim.Adam`.
    The two agree up to `ε` and differ visibly for large `ε`.

    `amsgrad=True` (Reddi et al. 2018) keeps the running maximum of the
    corrected second moment and steps with it:
    `v_hat_max = max(v_hat_max, v_hat)`, `w -= lr * m_hat /
    (sqrt(v_hat_max) + epsilon)`.

    Args:
        learning_rate: `α`: a float >= 0, a `LearningRateSchedule`, or a
            callable. Defaults to `0.001`.
        beta_1: `β₁`, decay of the first-moment average, in [0, 1).
            Defaults to `0.9`.
        beta_2: `β₂`, decay of the second-moment average, in [0, 1).
            Defaults to `0.999`.
        epsilon: `ε` >= 0, added to `√v̂`. Defaults to `1e-8`.
        amsgrad: whether to use the AMSGrad variant. Defaults to `False`.
        {{base_args}}

    Example:

    >>> import keras, keras_training_kit as ktk
    >>> opt = ktk.optimizers.Adam(learning_rate=0.1)
    >>> w = keras.Variable([1.0])
    >>> opt.apply([keras.ops.convert_to_tensor([3.0])], [w])
    >>> round(float(w.numpy()[0]), 4)   # first step moves by ~learning_rate
    0.9

    Reference:
        - [Kingma & Ba, 2014](https://arxiv.org/abs/1412.6980).
        - [Reddi et al., 2018](https://openreview.net/forum?id=ryQu7f-RZ).
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        amsgrad=False,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = v.check_unit_interval("beta_1", beta_1)
        self.beta_2 = v.check_unit_interval("beta_2", beta_2)
        self.epsilon = v.check_non_negative("epsilon", epsilon)
        self.amsgrad = bool(
            v.check_choice("amsgrad", amsgrad, (True, False))
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        names = ["momentum", "velocity"]
        self._add_slots(var_list, names + ["velocity_hat"] * self.amsgrad)

    def _corrections(self, dtype, step):
        return self._per_step(
            ("corrections", dtype),
            lambda: (_bias_correction(self.beta_1, step, dtype),
                     _bias_correction(self.beta_2, step, dtype)),
        )

    def _amsgrad_scales(self, dtype, learning_rate, step):
        correction_1, correction_2 = self._corrections(dtype, step)
        return self._per_step(
            ("amsgrad", dtype),
            lambda: (learning_rate / correction_1, 1.0 / correction_2),
        )

    def _slot_increments(self, gradient, slots, learning_rate, step):
        # m ← β₁m + (1 − β₁)g is m ← m + (1 − β₁)(g − m), likewise v: added
        # in place, as Keras' Adam does.
        m, v = slots[:2]
        dm = (gradient - m) * (1.0 - self.beta_1)
        dv = (ops.square(gradient) - v) * (1.0 - self.beta_2)
        if not self.amsgrad:
            return dm, dv
        # v̂_max ← max(v̂_max, v / c₂), as the increment relu(v / c₂ − v̂_max).
        _, inverse_c2 = self._amsgrad_scales(gradient.dtype, learning_rate,
                                             step)
        return dm, dv, ops.relu((v + dv) * inverse_c2 - slots[2])

    def _step(self, gradient, variable, slots, learning_rate, step):
        m, v = slots[:2]
        dtype = variable.dtype
        if self.amsgrad:
            step_size, _ = self._amsgrad_scales(dtype, learning_rate, step)
            v_hat_max = self._nonzero(slots[2], self.epsilon)
            return step_size * m / (ops.sqrt(v_hat_max) + self.epsilon)
        # m̂ / (√v̂ + ε) = (√c₂ / c₁) · m / (√v + ε√c₂) with cᵢ = 1 − βᵢᵗ:
        # Algorithm 1 exactly, with one division per element instead of three
        # (the elementwise work is what bounds the update on a CPU).
        correction_1, correction_2 = self._corrections(dtype, step)
        step_size, eps = self._per_step(
            ("step_size", dtype),
            lambda: (learning_rate * ops.sqrt(correction_2) / correction_1,
                     self.epsilon * ops.sqrt(correction_2)),
        )
        v = self._nonzero(v, self.epsilon)
        return step_size * m / (ops.sqrt(v) + eps)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
            }
        )
        return config


def _bias_correction(beta, step, dtype):
    """`1 − βᵗ` with t = step + 1, accurate to the last bit of `dtype`.

    In float32, `1 − 0.999¹` loses four digits to cancellation (0.00099998
    instead of 0.001); `−expm1(t·ln β)` does not. Never below float32, so
    float16 variables get exact corrections too.
    """
    compute = "float64" if dtype == "float64" else "float32"
    t = ops.cast(step, compute) + 1.0
    log_beta = math.log(beta) if beta > 0 else -math.inf
    return ops.cast(-ops.expm1(t * log_beta), dtype)

