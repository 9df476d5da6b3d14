"""The repair loop: diagnose, apply a remedy to a copy, retrain, verify."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import keras
import numpy as np

from keras_training_kit.diagnosis.repair import _doses, _remedies, _surgery
from keras_training_kit.diagnosis.repair._context import Context
from keras_training_kit.diagnosis.repair._inputs import check_inputs, split
from keras_training_kit.diagnosis.repair._verdict import (
    _badness,
    _bar,
    _record,
    _short,
    _why,
)
from keras_training_kit.diagnosis.repair.report import RepairReport, Run

# Remedies with a dose that can be applied again on top of themselves.
_GRADED = ("lower_learning_rate", "raise_learning_rate", "larger_batch",
           "more_epochs", "clip_gradients", "less_regularization")
_MAX_DOSES = 2


def repair(
    build_model: Callable[[], keras.Model],
    x: Any,
    y: Any,
    validation_data: Any = None,
    validation_split: float | None = None,
    epochs: int = 20,
    max_attempts: int = 6,
    objective: str = "val_loss",
    seed: int = 0,
    verbose: int = 1,
    **fit_kwargs: Any,
) -> RepairReport:
    """Diagnoses a training run, applies the course's remedies, verifies.

    The course's cycle, automated: train, diagnose, change one thing, train
    again, keep the change only if it helped.

    1. `build_model()` (a fresh compiled Sequential or functional model) is
       trained with `ktk.callbacks.TrainingDiagnosis`: `report.before`.
    2. While a warning or error remains and `max_attempts` retrainings
       allow, the next remedy of the root cause (`Finding.remedies`, in
       order) is applied to a *rebuilt copy* (the user's function and
       models are never modified), which is retrained from the same seed
       and, where the remedy leaves a layer unchanged, the same initial
       weights, and diagnosed again.
    3. A change passes only if the targeted finding is gone **and**
       the objective beats the run-to-run noise: the original is trained
       once more with `seed + 1` (`report.noise` is the difference), and
       the remedied copy must beat the best of the current recipe's two
       runs under both seeds (it is trained with `seed + 1` too once it
       passes under `seed`; a fixed output layer, the correction of a
       definite bug, must only not be worse than those runs). Otherwise
       it is rolled back and the next remedy is tried; a graded remedy
       that helped without removing its finding (a learning rate still
       too high), or that passed, is applied once more on top of itself.
       Once one remedy passes, the finding's other remedies are tried
       too (while attempts allow), and the passing change with the best
       objective over both seeds is kept: a deep sigmoid net may train
       with batch normalization, yet better with ReLU; a learning rate
       raised once may do better raised twice. Kept changes compose
       (standardized inputs, then a lower learning rate, ...).
    4. It stops when the run is healthy or after `max_attempts`
       retrainings with a remedy. Attempts left over go to refining: a
       kept graded dose whose stronger dose did worse (a learning rate
       raised x10 past the edge of divergence) is retried halfway
       between the two on a log scale, and kept on the same terms.

    ```
    keep(change) = finding gone and
                   max(score_seed, score_seed+1) better than
                   min(current_seed, current_seed+1)
    ```

    The objective is measured by `model.evaluate` on the validation data
    after training (the model that `report.model` holds; with early
    stopping, the restored best epoch), without weight penalties, so
    that adding L2 does not count against itself.

    Remedies that need a new architecture (batch normalization, other
    activations, a wider model, dropout, L2, a prepended `Normalization`)
    rebuild Sequential and functional models from their configs; for a
    subclassed model they are reported ("cannot rebuild a subclassed
    model: apply by hand: ...") and the optimizer, fit and data remedies
    still apply.

    Args:
        build_model: a function returning a fresh compiled Sequential or
            functional `keras.Model`.
        x: training inputs (an array).
        y: training targets (an array).
        validation_data: `(x_val, y_val)` or with sample weights. Defaults
            to `None`: then `validation_split` is required.
        validation_split: a fraction in (0, 1): the last rows of `x`, `y`,
            as Keras takes them. Defaults to `None`.
        epochs: epochs per training run, an integer >= 1. Defaults to `20`.
        max_attempts: the most retrainings with a remedy, an integer
            >= 1. Defaults to `6`.
        objective: the quantity to improve, `"val_<metric>"` (minimized
            for losses and errors, maximized for accuracy, AUC, ...).
            Defaults to `"val_loss"`.
        seed: the seed of every run (the noise run uses `seed + 1`), an
            integer >= 0. Defaults to `0`.
        verbose: 0 silent, 1 one line per attempt, 2 also each run's
            diagnosis. Defaults to `1`.
        **fit_kwargs: more `model.fit` arguments (`batch_size`,
            `callbacks`, `class_weight`, `sample_weight`, `shuffle`, ...).

    Returns:
        A `RepairReport`.

    Raises:
        ValueError: before any training, when `build_model` does not
            return a compiled model, `max_attempts < 1`, or neither
            `validation_data` nor `validation_split` is given.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> def build_model():
    ...     model = keras.Sequential([keras.Input((4,)),
    ...                               keras.layers.Dense(2, "softmax")])
    ...     model.compile("adam", "sparse_categorical_crossentropy")
    ...     return model
    >>> report = repair(build_model, x, y, validation_split=0.25, epochs=2,
    ...                 max_attempts=1, verbose=0)
    >>> sum(a["trained"] for a in report.attempts) <= 1
    True
    """
    check_inputs(build_model, x, y, validation_data, validation_split,
                 epochs, max_attempts, objective, seed, verbose, fit_kwargs)
    x, y = np.asarray(x), np.asarray(y)
    sample_weight = fit_kwargs.pop("sample_weight", None)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
    keras.utils.set_random_seed(seed)
    template = build_model()
    if not isinstance(template, keras.Model):
        raise ValueError(
            "Argument `build_model` must return a keras.Model. "
            f"Received: build_model() -> {type(template).__name__}"
        )
    if not getattr(template, "compiled", False) or template.optimizer is None:
        raise ValueError(
            "Argument `build_model` must return a compiled model (call "
            "`model.compile(optimizer, loss, metrics)` inside it). "
            f"Received: an uncompiled {type(template).__name__}"
        )
    if not template.built:
        template = _built_copy(template, x)
    x, y, sample_weight, val = split(
        x, y, sample_weight, validation_data, validation_split
    )
    ctx = Context(build_model, template, x, y, val, sample_weight, epochs,
                   objective, seed, fit_kwargs)
    return _run_loop(ctx, max_attempts, verbose)


def _built_copy(template, x):
    if not _surgery.is_rebuildable(template):
        template(x[:1])  # a subclassed model builds on its first call
        return template
    copy = keras.models.clone_model(template)
    copy.build((None, *x.shape[1:]))
    _surgery.compile_like(copy, template, _remedies.Recipe())
    return copy


def _say(verbose: int, text: str) -> None:
    if verbose:
        print(text, flush=True)


def _run_loop(ctx: Context, max_attempts: int, verbose: int):
    recipe = _remedies.Recipe()
    before = ctx.train(recipe)
    _say(verbose, f"repair: before: {before.describe(ctx.objective)}")
    if verbose >= 2:
        print(before.text)
    current, attempts, noise, trained = before, [], None, 0
    noise_seconds = 0.0
    pair: tuple = ()  # the current recipe's (score, error) under both seeds
    tried: set = set()
    passed: list = []  # (badness, run, recipe, record) of passing remedies
    target = None  # the finding whose remedies are being compared
    overshoots: dict = {}  # id(record) -> (remedy, its stronger dose)
    pending: list = []  # (remedy, its target, kept recipe, stronger dose)
    while current.problems and trained < max_attempts:
        if noise is None:  # run-to-run noise of the original, once
            second = ctx.train(recipe, seed=ctx.seed + 1)
            pair = ((before.score, before.error),
                    (second.score, second.error))
            noise_seconds = second.seconds
            noise = abs(before.score - second.score) if all(
                math.isfinite(p) for p in (before.score, second.score)
            ) else 0.0
            _say(verbose, f"repair: run-to-run noise of {ctx.objective}: "
                          f"{noise:.4g} (seeds {ctx.seed}, {ctx.seed + 1})")
        step = _next_remedy(current, tried, target)
        if step is None:
            if passed:  # every remedy of the root cause has had its turn
                current, recipe, pair = _commit(passed, ctx, verbose)
                pending += _overshot(passed, overshoots)
                passed, target, tried = [], None, set()
                continue
            break
        finding, remedy = step
        tried.add(remedy.name)
        record = _record(remedy, finding.code)
        start = time.perf_counter()
        try:
            candidate, chosen = _remedies.apply(remedy, recipe, ctx)
        except _surgery.Unapplicable as e:
            record["note"] = str(e)
            attempts.append(record)
            _say(verbose, f"repair: {remedy.name} for {finding.code}: "
                          f"not applied ({e})")
            continue
        first_ok = None  # (record, mean) of this remedy's first pass
        for dose in range(_MAX_DOSES + 1):
            record["params"] = chosen
            run = ctx.train(candidate)
            trained += 1
            gone = finding.code not in run.codes
            by_error = candidate.loss != recipe.loss
            best_now = _bar(remedy.name, pair, ctx, by_error)
            better = _badness(ctx, run.score, run.error, by_error) < best_now
            both = better
            if gone and better:  # the same test under the second seed
                other = ctx.train(candidate, seed=ctx.seed + 1)
                both = _badness(ctx, other.score, other.error,
                                by_error) < best_now
                record["score_seed2"] = other.score
                record["error_seed2"] = other.error
            ok = gone and both
            record.update(
                findings=run.findings, score=run.score, kept=False,
                trained=True, seconds=time.perf_counter() - start, run=run,
                note=_why(gone, better, both, finding.code) + (
                    " (validation error rate: the loss changed)"
                    if by_error else ""),
            )
            attempts.append(record)
            _say(verbose, f"repair: {remedy.name} {_short(chosen)} for "
                          f"{finding.code}: {run.describe(ctx.objective)}: "
                          f"{'passes' if ok else 'rolled back'}")
            if verbose >= 2:
                print(run.text)
            mean = math.inf
            if ok:
                mean = (ctx.badness(run.score)
                        + ctx.badness(record["score_seed2"])) / 2
                passed.append((mean, run, candidate, record))
                target = finding.code
            if first_ok is not None:  # one stronger dose after a pass
                if mean >= first_ok[1]:  # it overshot: refine at the end
                    overshoots[id(first_ok[0])] = (remedy, candidate)
                break
            if ok:
                first_ok = (record, mean)
            # A graded remedy (a learning rate lower again, a larger
            # batch) gets a stronger dose, from that candidate, while
            # attempts allow: when it helped but left its finding, and
            # once when it passed (the stronger dose may do better).
            if not (ok or (better and not gone)) or (
                remedy.name not in _GRADED or trained >= max_attempts
                or dose == _MAX_DOSES
            ):
                break
            try:
                candidate, chosen = _remedies.apply(remedy, candidate, ctx)
            except _surgery.Unapplicable:
                break
            record, start = _record(remedy, finding.code), time.perf_counter()
    if passed:  # out of attempts while comparing
        current, recipe, pair = _commit(passed, ctx, verbose)
        pending += _overshot(passed, overshoots)
    for remedy, code, kept, failed in pending:  # refine, if time
        if trained >= max_attempts:
            break
        current, recipe, pair, done = _refine(
            ctx, remedy, code, kept, failed, current, recipe, pair,
            attempts, verbose,
        )
        trained += done
    report = RepairReport(before, current, attempts, ctx.objective,
                          ctx.mode, noise, noise_seconds)
    _say(verbose, report.summary())
    return report








def _commit(passed: list, ctx: Context, verbose: int):
    """Keep the passing remedy with the best objective over both seeds."""
    _, run, recipe, record = min(passed, key=lambda p: p[0])
    record["kept"] = True
    for *_, other in passed:
        if other is not record:
            other["note"] += (f"; {record['remedy']} did better, so it is "
                              "the one kept")
    _say(verbose, f"repair: kept {record['remedy']} "
                  f"({run.describe(ctx.objective)})")
    return run, recipe, ((run.score, run.error),
                         (record["score_seed2"], record.get("error_seed2")))


def _overshot(passed: list, overshoots: dict) -> list:
    """The kept change, when its stronger dose did worse than it."""
    out = []
    for _, _, recipe, record in passed:
        if record["kept"] and id(record) in overshoots:
            remedy, stronger = overshoots[id(record)]
            out.append((remedy, record["target"], recipe, stronger))
    return out


def _refine(ctx, remedy, code, kept, failed, current, recipe, pair,
            attempts, verbose):
    """Once healthy or out of remedies, with attempts left: a kept graded
    dose whose stronger dose did worse is retried halfway between the two
    on a log scale. Kept if it adds no problem and beats the current
    recipe's runs under both seeds (the usual bar)."""
    if _doses.value(remedy, recipe) != _doses.value(remedy, kept):
        return current, recipe, pair, 0  # a later change moved the dose
    try:
        candidate, chosen = _doses.between(remedy, recipe, failed)
    except _surgery.Unapplicable:
        return current, recipe, pair, 0
    record = _record(remedy, code)
    start = time.perf_counter()
    run = ctx.train(candidate)
    no_new = {f.code for f in run.problems} <= {
        f.code for f in current.problems}
    bar = _bar(remedy.name, pair, ctx)
    better = ctx.badness(run.score) < bar
    both = better
    if no_new and better:
        other = ctx.train(candidate, seed=ctx.seed + 1)
        record["score_seed2"], record["error_seed2"] = other.score, other.error
        both = ctx.badness(other.score) < bar
    ok = no_new and both
    record.update(
        params=chosen, findings=run.findings, score=run.score, kept=ok,
        trained=True, seconds=time.perf_counter() - start, run=run,
        note="refinement of the kept dose: " + (
            "no new finding; the objective beats the previous runs under "
            "both seeds" if ok else "no new finding" if no_new
            else "a new finding") + ("" if ok or not no_new else
                                     "; the objective is not better under "
                                     "both seeds"),
    )
    attempts.append(record)
    _say(verbose, f"repair: {remedy.name} {_short(chosen)} (refined): "
                  f"{run.describe(ctx.objective)}: "
                  f"{'kept' if ok else 'rolled back'}")
    if ok:
        return run, candidate, ((run.score, run.error),
                                (other.score, other.error)), 1
    return current, recipe, pair, 1


def _next_remedy(run: Run, tried: set, target: str | None = None):
    """The next untried remedy of the root cause (of `target`, once one of
    its remedies has passed: its other remedies are compared first)."""
    for finding in run.problems:  # the root cause first
        if target is not None and finding.code != target:
            continue
        for remedy in finding.remedies:
            if remedy.name not in tried:
                return finding, remedy
    return None
