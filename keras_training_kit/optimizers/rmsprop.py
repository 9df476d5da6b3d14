"""RMSProp: a running average of squared gradients scales each step."""

from __future__ import annotations

from keras import ops

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.optimizers._base import KitOptimizer, with_base_args


@register("optimizer", example={"learning_rate": 0.01})
@with_base_args
class RMSProp(KitOptimizer):
    """RMSProp (Hinton, Coursera lecture 6e), as in the course.

    The slide's rule `σ⁰ = g⁰`, `σᵗ = √(ρ(σᵗ⁻¹)² + (1−ρ)(gᵗ)²)`,
    `wᵗ⁺¹ = wᵗ − η gᵗ/σᵗ`, written with `s = σ²` and a stabilizing `ε`:

    ```python
    s = g ** 2 if (t == 0 and init_with_first_gradient)
        else rho * s + (1 - rho) * g ** 2
    w = w - learning_rate * g / sqrt(s + epsilon)
    ```

    With `init_with_first_gradient=False` the average starts at `s₀ = 0`,
    as in `keras.optimizers.RMSprop` and `torch.optim.RMSprop` (their math
    then, up to where each puts `ε`), which makes the first steps larger by
    up to `1/√(1−ρ)`; the slide's start avoids that.

    Args:
        learning_rate: `η`: a float >= 0, a `LearningRateSchedule`, or a
            callable. Defaults to `0.001`.
        rho: `ρ` (`α` on the slide, `β` in the second form), the decay of
            the running average, in [0, 1). Defaults to `0.9`.
        epsilon: `ε` >= 0, added inside the square root (with `0`, a weight
            whose gradients have all been 0 takes no step). Defaults to
            `1e-7`.
        init_with_first_gradient: start the average at the first squared
            gradient (`σ⁰ = g⁰`) instead of at zero. Defaults to `True`.
        {{base_args}}

    Example:

    >>> import keras, keras_training_kit as ktk
    >>> opt = ktk.optimizers.RMSProp(learning_rate=0.1, epsilon=0.0)
    >>> w = keras.Variable([1.0])
    >>> opt.apply([keras.ops.convert_to_tensor([4.0])], [w])
    >>> round(float(w.numpy()[0]), 4)   # first step: 1 - 0.1 * 4 / 4
    0.9

    Reference:
        - Tieleman & Hinton, 2012, "Lecture 6.5 - rmsprop", COURSERA:
          Neural Networks for Machine Learning.
    """

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        epsilon=1e-7,
        init_with_first_gradient=True,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = v.check_unit_interval("rho", rho)
        self.epsilon = v.check_non_negative("epsilon", epsilon)
        self.init_with_first_gradient = bool(v.check_choice(
            "init_with_first_gradient", init_with_first_gradient,
            (True, False),
        ))

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._add_slots(var_list, ["velocity"])

    def _slot_increments(self, gradient, slots, learning_rate, step):
        # s ← ρs + (1 − ρ)g² is s ← s + (1 − ρ)(g² − s); with
        # `init_with_first_gradient` the first step's rate is 1 (s ← g²).
        (s,) = slots
        rate = 1.0 - self.rho
        if self.init_with_first_gradient:
            dtype = gradient.dtype
            rate = self._per_step(("rate", dtype), lambda: ops.cast(
                ops.where(ops.equal(step, 0.0), 1.0, 1.0 - self.rho), dtype
            ))
        return ((ops.square(gradient) - s) * rate,)

    def _step(self, gradient, variable, slots, learning_rate, step):
        (s,) = slots
        s = self._nonzero(s + self.epsilon, self.epsilon)
        return learning_rate * gradient * ops.rsqrt(s)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "epsilon": self.epsilon,
                "init_with_first_gradient": self.init_with_first_gradient,
            }
        )
        return config

