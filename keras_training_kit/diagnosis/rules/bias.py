"""Rule: a linear model too simple for its data (`underfitting`).

`check_progress` calls a run underfit when its loss stays near the
constant predictor's. A linear model can end well below that and still
not fit its training data: on two interleaved half-moons, or on classes
separated by a sphere. The course asks "does it work on the training
data?"; the yardsticks here are k nearest neighbours and a quadratic
model (kernel ridge regression on every product of two features), each
predicting every training row from the others
(`ktk.diagnosis._neighbours`). When a model with a single weight layer
gets significantly more of its own training rows wrong than a yardstick
gets rows it has not seen, the model class is too simple for the data:
large bias, whose remedy is a hidden layer.

Only linear models are judged so. A net with hidden layers that k-NN
beats has the capacity and is held back by something else (its
initialization, its learning rate, its regularization); on the corpus
such a net (Leaky ReLU units pushed far into their negative side at
initialization) loses to k-NN exactly as much as a linear model does on
the same half-moons, yet its labels call it healthy: no threshold on the
gap tells them apart, so the rule does not try.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_training_kit.diagnosis.finding import Finding
from keras_training_kit.diagnosis.rules import thresholds as T
from keras_training_kit.diagnosis.rules._stats import (
    finite_prefix,
    sign_test_p,
)
from keras_training_kit.diagnosis.rules.curves import (
    final_level,
    steadiness,
    trend,
)


def gap(neighbours: dict) -> float | None:
    """How much worse than k-NN the model is, as a fraction of the
    constant predictor's error (None without a constant error)."""
    constant = neighbours.get("constant") or 0.0
    if constant <= 0:
        return None
    return (neighbours["model"] - neighbours["neighbours"]) / constant


_NAMES = {
    "neighbours": "{k} nearest neighbours",
    "quadratic": "a quadratic model (kernel ridge regression on every "
                 "product of two features)",
}


def _yardsticks(nb: dict) -> list[tuple]:
    """`(name, error, model_worse, model_better, linear_worse,
    linear_better)` per yardstick measured (linear counts None where the
    converged linear model was not measured)."""
    out = [("neighbours", nb["neighbours"], nb["model_worse"],
            nb["neighbours_worse"], nb.get("linear_worse"),
            nb.get("linear_better"))]
    if "quadratic" in nb:
        out.append(("quadratic", nb["quadratic"],
                    nb["model_worse_quadratic"], nb["quadratic_worse"],
                    nb.get("linear_worse_quadratic"),
                    nb.get("linear_better_quadratic")))
    return out


def _loses(error: float, ref: float, worse: int, better: int,
           level: float) -> bool:
    """Worse than the yardstick on average and on significantly more
    rows."""
    return error > ref and sign_test_p(worse, better) <= level


def _beaten_by(nb: dict) -> tuple | None:
    """The yardstick that beats both the model and (where measured) the
    converged linear model, with the smallest sign-test p; each of the
    yardsticks is tested at `BIAS_P` / their number (Bonferroni)."""
    sticks = _yardsticks(nb)
    level = T.BIAS_P / len(sticks)
    found = []
    for name, ref, worse, better, lin_worse, lin_better in sticks:
        if not _loses(nb["model"], ref, worse, better, level):
            continue
        if "linear" in nb and not _loses(nb["linear"], ref, lin_worse,
                                         lin_better, level):
            continue  # a converged linear model fits: this one unfinished
        found.append((sign_test_p(worse, better), name, ref))
    return min(found) if found else None


def check_bias(
    loss: Sequence[float],
    batch_losses: Sequence[Sequence[float]] | None = None,
    *,
    neighbours: dict | None,
    weight_layers: int | None,
    val_loss: Sequence[float] | None = None,
) -> list[Finding]:
    """`underfitting` when k-NN fits a linear model's training rows better.

    All of:

    - the model has a single weight layer (`weight_layers == 1`: a
      linear or logistic model, whatever its output activation);
    - its mean error on a sample of its training rows is above a
      yardstick's leave-one-out error on the same rows (k-NN, or where
      measured the quadratic model of `_neighbours.quadratic_loo`), and
      the rows the model gets worse outnumber the rows the yardstick gets
      worse at the `BIAS_P` level (one-sided exact sign test; with two
      yardsticks each at `BIAS_P / 2`, Bonferroni);
    - where measured (`neighbours["linear"]`), a linear model trained to
      convergence on the same rows loses to that yardstick the same way:
      the model class is too simple, not a run stopped before its class
      fits;
    - the training curve has levelled off: its later half shows no
      decline at the `TREND_Z` level, or it converges (its second half
      drops less than `LR_LOW_STEADY` of what the first half dropped, as
      in `check_progress`); a run still falling steadily is not done;
    - validation is not far above training (not a variance problem).

    Args:
        loss: per-epoch training losses.
        batch_losses: per-epoch batch losses, if recorded.
        neighbours: `ktk.diagnosis._neighbours.compare`'s result.
        weight_layers: how many layers with a kernel the model has.
        val_loss: per-epoch validation losses, where logged.

    Returns:
        `[Finding("underfitting", ...)]` or `[]`.

    Example:

    >>> nb = {"k": 5, "rows": 200, "kind": "error rate", "model": 0.14,
    ...       "neighbours": 0.03, "constant": 0.5, "model_worse": 26,
    ...       "neighbours_worse": 4}
    >>> flat = [0.7, 0.4, 0.33, 0.32, 0.32, 0.321, 0.319, 0.32, 0.32, 0.32]
    >>> [f.code for f in check_bias(flat, neighbours=nb, weight_layers=1)]
    ['underfitting']
    """
    if not neighbours or weight_layers != 1:
        return []
    model, knn = neighbours["model"], neighbours["neighbours"]
    cost = gap(neighbours)
    beaten = _beaten_by(neighbours)
    if cost is None or beaten is None:
        return []
    p, stick, ref = beaten
    constant = neighbours["constant"]
    loss = finite_prefix(loss)
    if loss.size == 0:
        return []
    z, points = trend(loss, batch_losses)
    steady = steadiness(loss, batch_losses)
    if points < 4 or (z <= -T.TREND_Z and steady >= T.LR_LOW_STEADY):
        return []  # too short to tell, or still falling at a steady rate
    val = finite_prefix(val_loss) if val_loss is not None else np.zeros(0)
    if val.size and val[-1] > 1.5 * loss[-1] + 1e-12:
        return []  # validation far above training: variance, not bias
    level = final_level(loss, batch_losses)
    kind = neighbours["kind"]
    shown = (lambda v: f"{v:.1%}") if kind == "error rate" else (
        lambda v: f"{v:.4g}")
    evidence = {
        "loss_first": float(loss[0]),
        "loss_last": level,
        "trend_z": float(z),
        "trend_points": points,
        "steadiness": steady,
        "kind": kind,
        "model_error": float(model),
        "neighbours_error": float(knn),
        "yardstick": stick,
        "yardstick_error": float(ref),
        "constant_error": float(constant),
        "k": int(neighbours["k"]),
        "rows": int(neighbours["rows"]),
        "sign_test_p": p,
        "gap": float(cost),
        "reason": (
            f"the loss levelled off ({loss[0]:.4g} -> {level:.4g}, "
            f"trend z = {z:.2f}) "
            f"with a training {kind} of {shown(model)}, while "
            f"{_NAMES[stick].format(k=neighbours['k'])} predicting each "
            f"of the same {neighbours['rows']} rows from the others "
            f"reach{'es' if stick == 'quadratic' else ''} {shown(ref)} "
            f"(constant predictor {shown(constant)}; sign "
            f"test p = {p:.2g}"
            + (f"; a linear model trained to convergence "
               f"{shown(neighbours['linear'])}"
               if "linear" in neighbours else "")
            + "): a linear model is too simple for this data"
        ),
    }
    return [Finding("underfitting", "warning", None, evidence)]
