"""Diagnosis rules: pure functions over curves, probe statistics and data.

Each rule takes plain arrays or dicts (the contents of a `RunRecord`) and
returns a list of `Finding` (empty when nothing is wrong); no rule touches a
model, so each is tested on synthetic inputs at and around its thresholds.
Every threshold lives in `thresholds` with its source or calibration.

- `curves`: diverged, overfitting, fit progress (underfitting /
  lr_too_low), lr_too_high, noisy_loss;
- `bias`: underfitting that a nearest-neighbour yardstick reveals;
- `probes`: vanishing/exploding gradients, dead and saturated units;
- `data`: reference losses, unscaled inputs and targets, initial loss;
- `head`: the output layer against the loss and the targets.
"""

from keras_training_kit._batch_loss import recover as recover_batch_losses
from keras_training_kit.diagnosis.rules import thresholds
from keras_training_kit.diagnosis.rules._stats import (
    finite_prefix,
    mann_kendall_z,
    sign_test_p,
)
from keras_training_kit.diagnosis.rules.bias import check_bias
from keras_training_kit.diagnosis.rules.curves import (
    check_diverged,
    check_lr_too_high,
    check_noisy_loss,
    check_overfitting,
    check_progress,
    final_level,
    trend,
)
from keras_training_kit.diagnosis.rules.data import (
    check_initial_loss,
    check_unscaled_inputs,
    check_unscaled_targets,
    chance_loss,
    constant_predictor_loss,
    from_logits,
    input_statistics,
    loss_name,
    target_statistics,
)
from keras_training_kit.diagnosis.rules.head import check_loss_output
from keras_training_kit.diagnosis.rules.probes import (
    check_dead_units,
    check_gradients,
    check_saturated_units,
    median_update_ratio,
)

__all__ = [
    "chance_loss",
    "check_bias",
    "check_dead_units",
    "check_diverged",
    "check_gradients",
    "check_initial_loss",
    "check_loss_output",
    "check_lr_too_high",
    "check_noisy_loss",
    "check_overfitting",
    "check_progress",
    "check_saturated_units",
    "check_unscaled_inputs",
    "check_unscaled_targets",
    "constant_predictor_loss",
    "final_level",
    "finite_prefix",
    "from_logits",
    "input_statistics",
    "loss_name",
    "mann_kendall_z",
    "median_update_ratio",
    "recover_batch_losses",
    "sign_test_p",
    "target_statistics",
    "thresholds",
    "trend",
]
