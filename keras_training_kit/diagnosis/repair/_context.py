"""The run context of a repair: the data, the template, building, training.

Every run of one repair (before, the noise run, each attempt) is trained
here from a `Recipe`: a fresh rebuilt copy of the template, the data as the
recipe changes it, `TrainingDiagnosis` attached, and the objective measured
on the trained model.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import keras
import numpy as np

from keras_training_kit.diagnosis.repair import _remedies, _surgery
from keras_training_kit.diagnosis.rules.data import CROSS_ENTROPIES, loss_name
from keras_training_kit.diagnosis.repair.report import Run

_MAXIMIZE = ("acc", "auc", "precision", "recall", "f1", "r2", "iou")


def objective_mode(objective: str) -> str:
    name = objective.lower()
    if "loss" in name or "error" in name:
        return "min"
    return "max" if any(k in name for k in _MAXIMIZE) else "min"


def _rows(data: Any, index: np.ndarray) -> Any:
    return None if data is None else data[index]


class Context:
    """What every run of one repair shares: data, template and settings."""

    def __init__(self, build_model, template, x, y, val, sample_weight,
                 epochs, objective, seed, fit_kwargs):
        self.build_model = build_model
        self.template = template
        self.x, self.y = x, y
        self.xv, self.yv, self.swv = val
        self.sample_weight = sample_weight
        self.epochs = epochs
        self.objective = objective
        self.mode = objective_mode(objective)
        self.seed = seed
        self.fit_kwargs = fit_kwargs
        self.batch_size = int(fit_kwargs.get("batch_size") or 32)
        self.n_train = len(x)
        self.x_matrix = x if np.asarray(x).dtype.kind in "fiu" else None
        self.rebuildable = _surgery.is_rebuildable(template)
        self.rebuild_problem = "" if self.rebuildable else (
            "a subclassed model"
        )
        self.rebuild_detail = "" if self.rebuildable else (
            f"class {type(template).__name__}"
        )
        if self.rebuildable:
            try:  # custom layers without get_config cannot be cloned
                _surgery.rebuild(template, _remedies.Recipe())
            except Exception as e:  # noqa: BLE001
                self.rebuildable = False
                self.rebuild_problem = "the model from its config"
                self.rebuild_detail = f"{type(e).__name__}: {e}"[:300]
        self.weights = _surgery.initial_weights(template) if (
            self.rebuildable
        ) else template.get_weights()
        self.optimizer_config = keras.optimizers.serialize(template.optimizer)
        loss = (template.get_compile_config() or {}).get("loss")
        self.loss_name, self.from_logits = _loss_identity(
            loss if loss is not None else template.loss
        )
        self.regularized = _is_regularized(template, self.optimizer_config)
        self._output_fix = None

    # -- helpers the remedies call ---------------------------------------

    def count_non_finite(self) -> int:
        return int((~self._finite_rows(self.x, self.y)).sum())

    @staticmethod
    def _finite_rows(x, y) -> np.ndarray:
        ok = np.ones(len(x), dtype=bool)
        for a in (x, y):
            a = np.asarray(a)
            if a.dtype.kind == "f":
                ok &= np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        return ok

    def output_fix(self) -> dict:
        if self._output_fix is None:
            self._output_fix = _surgery.output_fix(
                self.template, self.loss_name, self.from_logits, self.y
            )
        return dict(self._output_fix)

    def class_error(self, model, recipe) -> float | None:
        """The validation error rate of a classifier whose head the repair
        can correct: the yardstick that the model before the correction
        and after it share when their losses cannot show the change
        (another loss: class ids under MSE; or the same value: Keras
        computes the cross-entropy from the logits behind a softmax over
        one unit, which always predicts 1). A one-unit regression output
        predicts the nearest class id, a one-unit probability `p > 0.5`
        (a logit `> 0`), several units their arg-max. None otherwise."""
        fix = self.output_fix()
        if not fix or not ("loss" in fix or "hinge" in self.loss_name
                           or loss_name(self.loss_name) in CROSS_ENTROPIES):
            return None
        xv, yv, swv = self.data(
            _remedies.Recipe(clean_inputs=recipe.clean_inputs)
        )["val"]
        p = np.concatenate([  # direct calls: `predict` retraces per model
            keras.ops.convert_to_numpy(model(xv[i:i + 1024], training=False))
            for i in range(0, len(xv), 1024)
        ])
        p = np.nan_to_num(p.reshape(len(p), -1).astype("float64"), nan=-1.0)
        truth = np.asarray(yv).reshape(len(p), -1)
        name, logits = _loss_identity(model.loss)
        if p.shape[1] > 1:
            if "binary" in name or truth.shape[1] not in (1, p.shape[1]):
                return None  # multi-label: no single class to compare
            guess = p.argmax(1)
        elif "crossentropy" in name or "hinge" in name:
            guess = (p[:, 0] > (0.0 if logits or "hinge" in name else 0.5))
        else:
            guess = np.clip(np.rint(p[:, 0]), 0, int(fix.get("units", 2)) - 1)
        truth = truth.argmax(1) if truth.shape[1] > 1 else truth[:, 0]
        if "hinge" in name:
            truth = truth > 0
        wrong = (guess != truth).astype("float64")
        return float(np.average(wrong, weights=None if swv is None
                                else np.asarray(swv).reshape(-1)))

    def lr_range_test(self, recipe, low, high):
        """`LRFinder`'s suggestion in [low, high], or (None, why)."""
        from keras_training_kit.callbacks import LRFinder

        data = self.data(recipe)
        batch = recipe.batch_size or self.batch_size
        per_epoch = max(1, math.ceil(len(data["x"]) / batch))
        steps = 60
        model = self.model(recipe, self.seed)
        finder = LRFinder(min_lr=low, max_lr=high, steps=steps, verbose=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model.fit(
                    data["x"], data["y"], batch_size=batch,
                    epochs=math.ceil(steps / per_epoch), verbose=0,
                    callbacks=[finder], sample_weight=data["sample_weight"],
                )
            except Exception as e:  # noqa: BLE001 (fall back to the factor)
                return None, f"LR range test failed ({type(e).__name__})"
        if finder.suggestion is None:
            return None, "LR range test inconclusive"
        return float(finder.suggestion), (
            f"LR range test over [{low:.3g}, {high:.3g}]"
        )

    # -- building and training -------------------------------------------

    def data(self, recipe) -> dict:
        x, y, sw = self.x, self.y, self.sample_weight
        xv, yv, swv = self.xv, self.yv, self.swv
        if recipe.clean_inputs:
            keep = self._finite_rows(x, y)
            x, y, sw = x[keep], y[keep], _rows(sw, keep)
            keep = self._finite_rows(xv, yv)
            xv, yv, swv = xv[keep], yv[keep], _rows(swv, keep)
        target = None
        if recipe.standardize_targets:
            mean, std = float(np.nanmean(y)), float(np.nanstd(y))
            target = (mean, std)
            y, yv = (y - mean) / std, (yv - mean) / std
        return {"x": x, "y": y, "sample_weight": sw, "val": (xv, yv, swv),
                "target": target}

    def model(self, recipe, seed: int) -> keras.Model:
        """A fresh compiled model for `recipe`, initial weights restored
        (for the main seed) where the recipe leaves a layer unchanged."""
        keras.utils.set_random_seed(seed)
        same_start = seed == self.seed
        if not self.rebuildable:
            model = self.build_model()
            if same_start:
                model.set_weights(self.weights)
            return _surgery.compile_like(model, self.template, recipe)
        normalizer = None
        if recipe.standardize_inputs:
            normalizer = _normalizer(self.data(recipe)["x"])
        fix = self.output_fix() if recipe.fix_output else None
        model, transform = _surgery.rebuild(
            self.template, recipe, normalizer=normalizer, output_fix=fix
        )
        if same_start:
            _surgery.transfer_weights(model, self.weights, transform.changed)
        if recipe.l2:
            from keras_training_kit.regularizers import penalize

            penalize(model, l2=recipe.l2)
        return _surgery.compile_like(model, self.template, recipe)

    def train(self, recipe, seed: int | None = None) -> Run:
        from keras_training_kit.callbacks import (
            EarlyStopping,
            TrainingDiagnosis,
        )

        seed = self.seed if seed is None else seed
        data = self.data(recipe)
        model = self.model(recipe, seed)
        diagnosis = TrainingDiagnosis(verbose=0)
        kwargs = dict(self.fit_kwargs)
        callbacks = [diagnosis, *kwargs.pop("callbacks", [])]
        if recipe.early_stopping is not None:
            callbacks.append(EarlyStopping(
                monitor=self.objective, patience=recipe.early_stopping,
                restore_best_weights=True, verbose=0,
            ))
        kwargs["batch_size"] = recipe.batch_size or self.batch_size
        xv, yv, swv = data["val"]
        validation = (xv, yv) if swv is None else (xv, yv, swv)
        keras.utils.set_random_seed(seed)
        start = time.perf_counter()
        history = model.fit(
            data["x"], data["y"], sample_weight=data["sample_weight"],
            validation_data=validation, epochs=recipe.epochs or self.epochs,
            callbacks=callbacks, verbose=0, **kwargs,
        )
        seconds = time.perf_counter() - start
        if data["target"] is not None:
            model = _unstandardize(model, *data["target"], self.template,
                                   recipe)
        score = self.score(model, recipe)
        curves = {k: list(map(float, v)) for k, v in history.history.items()}
        findings, text = list(diagnosis.findings), diagnosis.report()
        if recipe.standardize_inputs:
            findings, text = _rejudge_inputs(findings, text, model,
                                             data["x"], curves)
        return Run(findings, curves, score, seconds, model, recipe, text,
                   error=self.class_error(model, recipe))

    def score(self, model, recipe) -> float:
        """The objective of a trained model, without weight penalties."""
        key = self.objective
        on_val = key.startswith("val_")
        key = key[4:] if on_val else key
        if on_val:
            xv, yv, swv = self.data(
                _remedies.Recipe(clean_inputs=recipe.clean_inputs)
            )["val"]
        else:
            d = self.data(_remedies.Recipe(clean_inputs=recipe.clean_inputs))
            xv, yv, swv = d["x"], d["y"], d["sample_weight"]
        result = model.evaluate(
            xv, yv, sample_weight=swv, verbose=0, return_dict=True,
            batch_size=max(self.batch_size, 256),
        )
        if key not in result:
            raise ValueError(
                f"Argument `objective` must name a logged quantity; "
                f"`{key}` is not among {sorted(result)}. "
                f"Received: objective={self.objective!r}"
            )
        value = float(result[key])
        if key == "loss" and model.losses:  # L2 on kernels: data loss only
            value -= float(sum(
                float(keras.ops.convert_to_numpy(p)) for p in model.losses
            ))
        return value

    def badness(self, score: float) -> float:
        if score is None or not math.isfinite(score):
            return math.inf
        return score if self.mode == "min" else -score


def _normalizer(x) -> keras.layers.Layer:
    """`keras.layers.Normalization` with the training inputs' per-feature
    mean and variance (what `adapt` computes), constant features left
    unscaled (variance 1, as scikit-learn's `StandardScaler` does): an
    epsilon there would multiply any validation deviation by 1e7."""
    flat = np.asarray(x, dtype="float64").reshape(-1, np.shape(x)[-1])
    mean = np.nanmean(flat, axis=0)
    variance = np.nanvar(flat, axis=0)
    variance = np.where(variance > 1e-12, variance, 1.0)
    return keras.layers.Normalization(
        mean=mean.tolist(), variance=variance.tolist(), name="standardize"
    )


def _rejudge_inputs(findings, text, model, x, curves):
    """`unscaled_inputs` judged on what the first layer after the
    prepended `Normalization` sees, by the diagnosis' own rule.

    `TrainingDiagnosis` measures the arrays given to `fit`; with the
    standardization inside the model those are still the raw inputs.
    """
    from keras_training_kit.diagnosis import Finding, check_unscaled_inputs

    found = [f for f in findings if f.code == "unscaled_inputs"]
    norm = [layer for layer in model.layers if layer.name == "standardize"]
    if not found or not norm:
        return findings, text
    z = keras.ops.convert_to_numpy(norm[0](x[:512]))
    z = z.reshape(-1, z.shape[-1]).astype("float64")
    if check_unscaled_inputs(np.nanmean(z, 0), np.nanstd(z, 0)):
        return findings, text
    kept = [f for f in findings if f.code != "unscaled_inputs"]
    for line in found[0].evidence.get("also_seen", []):  # folded into it
        code = str(line).split(":", 1)[0]
        if code not in [f.code for f in kept]:
            try:
                kept.append(Finding(code, "warning", None,
                                    {"reason": str(line).split(": ", 1)[-1]}))
            except ValueError:
                continue
    if not [f for f in kept if f.severity != "info"]:
        loss = [v for v in curves.get("loss", []) if math.isfinite(v)]
        kept = [Finding("healthy", "info", None, {
            "epochs": len(curves.get("loss", [])),
            "loss": loss[-1] if loss else float("nan"),
        })]
    text += (
        "\nRe-judged: unscaled_inputs is silent on the output of the "
        "prepended Normalization layer (what the network sees)."
    )
    return kept, text


def _unstandardize(model, mean, std, template, recipe):
    """The trained model with `y = std * z + mean` appended."""
    out = keras.layers.Rescaling(scale=std, offset=mean,
                                 name="unstandardize_targets")
    wrapped = keras.Model(model.inputs, out(model.outputs[0]))
    return _surgery.compile_like(wrapped, template, recipe)


def _loss_identity(loss: Any) -> tuple[str, bool]:
    if isinstance(loss, dict) and "config" in loss:
        cfg = loss.get("config") or {}
        name = cfg.get("name") if isinstance(cfg, dict) else cfg
        name = name or loss.get("class_name", "")
        logits = bool(cfg.get("from_logits", False)) if isinstance(
            cfg, dict
        ) else False
        return _snake(str(name)), logits
    if isinstance(loss, str):
        return _snake(loss), False
    name = getattr(loss, "name", None) or getattr(loss, "__name__", "")
    return _snake(str(name)), bool(getattr(loss, "from_logits", False))


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return out.lstrip("_")


def _is_regularized(template, optimizer_config) -> bool:
    if optimizer_config["config"].get("weight_decay"):
        return True
    for layer in _surgery.walk(template):
        config = layer.get_config()
        if any(config.get(k) for k in ("kernel_regularizer",
                                         "bias_regularizer",
                                         "activity_regularizer")):
            return True
        if "Dropout" in type(layer).__name__ and config.get("rate"):
            return True
    return False
