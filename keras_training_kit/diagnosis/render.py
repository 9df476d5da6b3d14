"""Renderers of a `Diagnosis`: text, JSON, HTML and TensorBoard.

They draw immutable findings and the plain `RunRecord`; none of them
judges anything (that is `analyze`'s job).
"""

from __future__ import annotations

import json
import os
from typing import Any

from keras_training_kit import _html
from keras_training_kit.diagnosis.record import RunRecord


def text(diagnosis: Any) -> str:
    """Readable text: a headline, each finding with its numbers and
    remedy, and what could not be checked."""
    errors = sum(f.severity == "error" for f in diagnosis)
    warnings = sum(f.severity == "warning" for f in diagnosis)
    if errors or warnings:
        head = f"Training diagnosis: {errors} error(s), {warnings} warning(s)."
    elif len(diagnosis):
        head = "Training diagnosis: healthy."
    else:
        head = "Training diagnosis: no training observed."
    lines = [head] + [str(f) for f in diagnosis]
    if diagnosis.notes:
        lines.append("Not checked: " + "; ".join(diagnosis.notes) + ".")
    return "\n".join(lines)


def to_json(diagnosis: Any, record: RunRecord | None = None) -> str:
    """The findings, the notes and (optionally) the record, as JSON."""
    out = diagnosis.to_dict()
    if record is not None:
        out["record"] = record.to_dict()
    return json.dumps(out, indent=2)


def _findings_table(diagnosis: Any) -> str:
    rows = []
    for f in diagnosis:
        epoch = "" if f.epoch is None else f.epoch + 1
        remedies = ", ".join(r.name for r in f.remedies)
        rows.append((
            _html.Raw(f'<span class="{f.severity}">{f.severity}</span>'),
            f.code, epoch, f.summary, remedies or "-",
        ))
    return _html.table(
        ("severity", "code", "epoch", "what was seen", "remedies"), rows
    )


def html_sections(
    diagnosis: Any, record: RunRecord | None = None, title: str = "Diagnosis"
) -> str:
    """The diagnosis as one HTML section: the loss curves with the
    findings marked, a table of findings, the advice, the notes."""
    from keras_training_kit.diagnosis.plot import loss_figure

    parts = []
    if record is not None and record.logs:
        history = record.history
        if record.learning_rates and "learning_rate" not in history:
            history["learning_rate"] = list(record.learning_rates)
        parts.append(_html.figure(loss_figure(history, diagnosis),
                                  alt="loss curves with findings"))
    parts.append(_findings_table(diagnosis))
    for f in diagnosis.problems:
        parts.append(_html.paragraph(f"{f.code}: {f.advice}"))
    if diagnosis.notes:
        parts.append(_html.paragraph(
            "Not checked: " + "; ".join(diagnosis.notes), cls="muted"
        ))
    return _html.section(title, *parts)


def to_html(
    diagnosis: Any,
    path: str | os.PathLike,
    record: RunRecord | None = None,
    title: str = "Training diagnosis",
) -> str:
    """Writes a self-contained HTML page (inline CSS, PNG data URIs)."""
    page = _html.page(title, html_sections(diagnosis, record, "Findings"))
    return _html.write(path, page)


def to_tensorboard(diagnosis: Any, log_dir: str, step: int) -> None:
    """Writes the report and each finding as TensorBoard text summaries
    under `<log_dir>/diagnosis` (TensorFlow's summary writer)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(os.path.join(log_dir, "diagnosis"))
    with writer.as_default():
        tf.summary.text(
            "training_diagnosis", text(diagnosis).replace("\n", "  \n"),
            step=step,
        )
        for f in diagnosis:
            tf.summary.text(f"finding/{f.code}", str(f), step=f.epoch or 0)
    writer.flush()
    writer.close()
