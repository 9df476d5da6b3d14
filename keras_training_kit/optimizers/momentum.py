"""Gradient descent with momentum, in the course's two forms."""

from __future__ import annotations

from keras_training_kit import _validation as v
from keras_training_kit._registry import register
from keras_training_kit.optimizers._base import KitOptimizer, with_base_args


@register("optimizer", example={"learning_rate": 0.05, "momentum": 0.9})
@with_base_args
class Momentum(KitOptimizer):
    """Gradient descent with momentum (movement or moving-average form).

    Movement form (`ema=False`, the course's first slide), `λ = momentum`,
    `v₀ = 0`; `v` is a weighted sum of all past gradients:

    ```python
    velocity = momentum * velocity - learning_rate * g
    w = w + velocity
    ```

    Moving-average form (`ema=True`, "`v = βv + (1−β)dW`, `W = W − αv`"),
    `β = momentum`:

    ```python
    velocity = momentum * velocity + (1 - momentum) * g
    w = w - learning_rate * velocity
    ```

    With a constant learning rate the two forms take the same steps when
    the moving-average form's learning rate is `η / (1 − β)`.

    `nesterov=True` evaluates the step at the look-ahead point (Sutskever et
    al. 2013), written, as in Keras and PyTorch, for the variable that
    already holds the look-ahead weights:

    ```python
    w = w + momentum * velocity - learning_rate * g        # ema=False
    w = w - learning_rate * (momentum * velocity + (1 - momentum) * g)
                                                           # ema=True
    ```

    Momentum does not guarantee the global minimum, but it can roll past
    plateaus and shallow local minima.

    `ema=False` is the math of `keras.optimizers.SGD(momentum=...)` and, at a
    constant learning rate, of `torch.optim.SGD(momentum=...)`. With
    `ema=True` the slot stores the undamped sum `u = v / (1 − β)`
    (`u ← βu + g`, step `η(1 − β)u`), the same numbers with one multiply
    less per element.

    Args:
        learning_rate: `η` (`α` on the moving-average slide): a float >= 0,
            a `LearningRateSchedule`, or a callable. Defaults to `0.01`.
        momentum: `λ` (movement form) or `β` (moving-average form), in
            [0, 1). Defaults to `0.9`.
        ema: False for the movement form, True for the moving-average form.
            Defaults to `False`.
        nesterov: whether to use Nesterov's look-ahead gradient. Defaults
            to `False`.
        {{base_args}}

    Example:

    >>> import keras, keras_training_kit as ktk
    >>> opt = ktk.optimizers.Momentum(learning_rate=0.1, momentum=0.5)
    >>> w = keras.Variable([1.0])
    >>> g = keras.ops.convert_to_tensor([1.0])
    >>> opt.apply([g], [w]); opt.apply([g], [w])
    >>> round(float(w.numpy()[0]), 4)   # 1 - 0.1 - (0.5*0.1 + 0.1)
    0.75

    Reference:
        - Polyak, 1964, "Some methods of speeding up the convergence of
          iteration methods".
        - [Sutskever et al., 2013](
          https://proceedings.mlr.press/v28/sutskever13.html).
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.9,
        ema=False,
        nesterov=False,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = v.check_unit_interval("momentum", momentum)
        self.ema = bool(v.check_choice("ema", ema, (True, False)))
        self.nesterov = bool(
            v.check_choice("nesterov", nesterov, (True, False))
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._add_slots(var_list, ["velocity"])

    def _rule(self, gradient, variable, slots, learning_rate, step):
        (velocity,) = slots
        beta = self.momentum
        if not self.ema:
            scaled = learning_rate * gradient  # once, also for Nesterov
            velocity = beta * velocity - scaled
            if self.nesterov:
                return beta * velocity - scaled, (velocity,)
            return velocity, (velocity,)  # added: w ← w + v
        # The slot holds u = v / (1 − β), the undamped sum u ← βu + g, so
        # that v = (1 − β)u costs no extra pass (see the docstring).
        velocity = beta * velocity + gradient
        direction = beta * velocity + gradient if self.nesterov else velocity
        return learning_rate * (1.0 - beta) * direction, (velocity,)

    @property
    def _rule_adds(self):
        # The movement form's step is the velocity itself: w ← w + v.
        return not self.ema

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "ema": self.ema,
                "nesterov": self.nesterov,
            }
        )
        return config

