"""How the repair loop judges a run: its badness, the bar a change must
beat, and the words of each attempt's record."""

from __future__ import annotations

import math

# Remedies that correct a definite bug rather than tune the training.
_CORRECTIONS = ("fix_output_layer",)


def _record(remedy, code: str) -> dict:
    return {"remedy": remedy.name, "params": dict(remedy.params),
            "target": code, "findings": None, "score": None,
            "kept": False, "trained": False, "seconds": 0.0, "note": ""}


def _badness(ctx, score, error, by_error: bool) -> float:
    """How bad a run is: its objective; its validation error rate when a
    corrected head changed the loss (`by_error`: the losses' values are
    in other units then)."""
    if by_error:
        return math.inf if error is None or not math.isfinite(error) else (
            error)
    return ctx.badness(score)


def _bar(remedy: str, pair: tuple, ctx,
         by_error: bool = False) -> float:
    """The badness a change must stay under: the best of the current
    recipe's two runs; for a correction of a definite bug (an output layer
    that does not fit the loss: softmax over one unit always predicts 1,
    although Keras computes the loss from the logits behind it) not being
    worse than the current recipe's runs is enough."""
    scores = [_badness(ctx, *p, by_error) for p in pair]
    if remedy in _CORRECTIONS:
        return math.nextafter(max(scores), math.inf)
    return min(scores)


def _short(params: dict) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in params.items() if k != "how"
    )


def _why(gone: bool, better: bool, both: bool, code: str) -> str:
    if gone and both:
        return (f"{code} gone; the objective beats the best of the previous "
                "runs under both seeds")
    parts = []
    if not gone:
        parts.append(f"{code} still found")
    if not better:
        parts.append("the objective is not better than the previous runs'")
    elif not both:
        parts.append("better under one seed only (within the noise)")
    return "; ".join(parts)
