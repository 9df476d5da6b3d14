"""`loss_output_mismatch`: the output layer does not fit the loss or targets.

Checked before training, from what the user wrote: the output layer's
activation and units, the compiled loss and its `from_logits`, and a sample
of the targets. Keras 3 quietly computes a cross-entropy from the logits
behind a sigmoid/softmax output, so some mistakes train "fine" in Keras and
break elsewhere; these are judged on the model as written.
"""

from __future__ import annotations

from keras_training_kit.diagnosis.rules import thresholds as T
from keras_training_kit.diagnosis.finding import Finding
from keras_training_kit.diagnosis.rules.data import (
    CROSS_ENTROPIES,
    REGRESSION_LOSSES,
)

_PROBABILITY = ("softmax", "sigmoid")
_UNBOUNDED = ("linear", None, "relu", "leaky_relu", "elu")


def _finding(severity: str, reason: str, fix: str, **evidence) -> Finding:
    evidence.update(reason=reason, fix=fix)
    return Finding("loss_output_mismatch", severity, 0, evidence)


def check_loss_output(
    loss: dict | None, head: dict | None, targets: dict | None
) -> list[Finding]:
    """Mismatches between the output layer, the loss and the targets.

    Args:
        loss: `{"name": canonical loss name, "from_logits": bool | None}`.
        head: `{"layer": name, "activation": name | None, "units": int}`.
        targets: `ktk.diagnosis.rules.target_statistics` of a sample.

    Returns:
        At most one `loss_output_mismatch` finding, with the fix.
    """
    if not loss or not head:
        return []
    name, logits = loss.get("name"), loss.get("from_logits")
    act, units = head.get("activation"), head.get("units")
    layer = head.get("layer", "output")
    ev = {"loss": name, "activation": act or "linear", "units": units,
          "layer": layer}
    if act == "softmax" and units == 1:
        return [_finding(
            "error",
            f"softmax over one unit in `{layer}` always outputs 1",
            "use Dense(1, activation='sigmoid') with binary_crossentropy, or "
            "Dense(C, activation='softmax') for C classes",
            **ev,
        )]
    if name in CROSS_ENTROPIES:
        if act in _PROBABILITY and logits:
            return [_finding(
                "warning",
                f"`{layer}` already applies {act} and the loss has "
                "from_logits=True, which applies it again",
                "set from_logits=False, or remove the output activation",
                **ev,
            )]
        if act in _UNBOUNDED and logits is False:
            return [_finding(
                "error",
                f"{ev['activation']} output `{layer}` with {name} expects "
                "probabilities",
                "use a softmax/sigmoid output, or keep it linear and pass "
                "from_logits=True to the loss",
                **ev,
            )]
        if act == "relu":
            return [_finding(
                "error",
                f"ReLU output `{layer}` cannot give negative logits",
                "use a linear output with from_logits=True",
                **ev,
            )]
    if targets and name in CROSS_ENTROPIES:
        found = _label_range(name, units, targets, ev)
        if found:
            return found
    if targets and name in REGRESSION_LOSSES:
        lo, hi = targets["min"], targets["max"]
        if act == "softmax" or (
            units and units > 1 and len(targets["shape"]) == 1
            and targets["integer"]
        ):
            return [_finding(
                "error",
                f"{name} on class labels with a {units}-unit "
                f"{ev['activation']} output",
                "use sparse_categorical_crossentropy with a softmax output",
                **ev,
            )]
        labels = class_ids(targets)
        if units == 1 and act in _UNBOUNDED and labels:
            return [_finding(
                "warning",
                f"{name} on integer labels 0..{labels - 1} through one "
                f"{ev['activation']} unit: class ids are not distances "
                "(predicting 4.5 between a 4 and a 5 is not a class)",
                f"for {labels} classes use Dense({labels}, "
                "activation='softmax') with sparse_categorical_crossentropy; "
                "if they are ordinal scores, ignore this",
                **ev,
            )]
        if act in _PROBABILITY and (lo < 0 or hi > 1):
            return [_finding(
                "error",
                f"{act} output `{layer}` lies in [0, 1] but the targets "
                f"range over [{lo:.3g}, {hi:.3g}]",
                "use a linear output for regression",
                **ev,
            )]
        if act == "relu" and lo < 0:
            return [_finding(
                "error",
                f"ReLU output `{layer}` cannot reach the negative targets "
                f"(min {lo:.3g})",
                "use a linear output for regression",
                **ev,
            )]
    return []


def class_ids(targets: dict) -> int | None:
    """C when the targets look like Keras class ids: an integer dtype (as
    `sparse_categorical_crossentropy` takes them), one value per sample,
    exactly the values 0..C-1 with 3 <= C <= `MAX_CLASS_IDS`; else None."""
    shape = targets.get("shape") or []
    if targets.get("dtype_kind") not in ("i", "u") or len(shape) > 2 or (
        len(shape) == 2 and shape[1] != 1
    ):
        return None
    lo, hi, unique = targets["min"], targets["max"], targets.get("unique")
    c = int(hi) + 1
    if lo != 0 or unique != c or not 3 <= c <= T.MAX_CLASS_IDS:
        return None
    return c


def _label_range(name, units, targets, ev) -> list[Finding]:
    lo, hi = targets["min"], targets["max"]
    if name == "sparse_categorical_crossentropy" and units:
        if not targets["integer"] or lo < 0 or hi >= units:
            return [_finding(
                "error",
                f"labels range over [{lo:.3g}, {hi:.3g}] but the output has "
                f"{units} classes (labels 0..{units - 1})",
                "one output unit per class, labels 0..C-1",
                **ev,
            )]
    if name == "binary_crossentropy" and (lo < 0 or hi > 1):
        return [_finding(
            "error",
            f"binary cross-entropy targets range over [{lo:.3g}, {hi:.3g}], "
            "outside [0, 1]",
            "use 0/1 targets (or sparse_categorical_crossentropy for "
            "class ids)",
            **ev,
        )]
    if name == "categorical_crossentropy":
        shape = targets["shape"]
        if len(shape) == 1 or (units and shape[-1] != units):
            return [_finding(
                "error",
                f"categorical cross-entropy needs one-hot targets of width "
                f"{units}; the targets have shape {shape}",
                "one-hot encode the labels, or use "
                "sparse_categorical_crossentropy for class ids",
                **ev,
            )]
    return []
