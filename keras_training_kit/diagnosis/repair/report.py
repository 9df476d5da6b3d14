"""`RepairReport`: what `ktk.diagnosis.repair` found, tried, kept."""

from __future__ import annotations

import io
import math
import os
from typing import Any

from keras_training_kit import _html


class Run:
    """One training run of a repair: its findings, curves and score.

    Attributes:
        findings: the `Finding` list of `TrainingDiagnosis`.
        history: per-epoch lists (`loss`, `val_loss`, ...).
        score: the objective, measured on the trained model.
        seconds: wall-clock seconds of `fit`.
        model: the trained model.
        recipe: the changes this run was trained with.
        text: the diagnosis report.
        error: the validation error rate, measured when a corrected head
            changes the loss (the losses' values are not comparable then);
            else None.
    """

    def __init__(self, findings, history, score, seconds, model, recipe,
                 text="", error=None):
        self.findings = list(findings)
        self.history = dict(history)
        self.score = float(score)
        self.seconds = float(seconds)
        self.model = model
        self.recipe = recipe
        self.text = text
        self.error = None if error is None else float(error)

    @property
    def problems(self) -> list:
        """The findings of severity "warning" or "error", root cause first."""
        return [f for f in self.findings if f.severity != "info"]

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.problems]

    def describe(self, objective: str) -> str:
        codes = ", ".join(self.codes) or "healthy"
        return f"{objective} {self.score:.4g}, {codes}"


def _params(params: dict) -> str:
    shown = []
    for key, value in (params or {}).items():
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif isinstance(value, (list, tuple)) and len(value) > 4:
            value = f"[{len(value)} items]"
        shown.append(f"{key}={value}")
    return ", ".join(shown)


class RepairReport:
    """The result of `ktk.diagnosis.repair`.

    Attributes:
        before: the `Run` of the user's model as given.
        after: the best `Run` found (the last kept change; `before` when
            nothing was kept).
        attempts: one dict per remedy tried, in order: `remedy`, `params`
            (the values it chose), `target` (the finding's code),
            `findings` (of its run, `None` when not applicable), `score`,
            `kept`, `trained`, `seconds`, `note` (why kept, rolled back or
            not applicable).
        model: the trained model of `after`.
        noise: the run-to-run noise of the original's objective,
            `|score(seed) - score(seed + 1)|` (`None` when the first run
            was healthy).
        repaired: `after` has no warning or error, a change was kept
            (each kept change beat the previous runs under both seeds)
            and its score is better than `before`'s (its validation error
            rate, when a corrected head changed the loss).
    """

    def __init__(self, before, after, attempts, objective, mode, noise,
                 noise_seconds=0.0):
        self.before = before
        self.after = after
        self.attempts = list(attempts)
        self.objective = objective
        self.mode = mode
        self.noise = noise
        self.noise_seconds = float(noise_seconds)

    @property
    def model(self):
        return self.after.model

    @property
    def kept(self) -> list[dict]:
        return [a for a in self.attempts if a["kept"]]

    @property
    def repaired(self) -> bool:
        if self.after.problems or not self.kept:
            return False
        if self.by_error:
            return _better(self.after.error, self.before.error, "min", 0.0)
        return _better(self.after.score, self.before.score, self.mode, 0.0)

    @property
    def loss_changed(self) -> bool:
        """A corrected head changed the loss: `before.score` and
        `after.score` are in different units then."""
        return self.before.recipe.loss != self.after.recipe.loss

    @property
    def by_error(self) -> bool:
        """`before` and `after` compare by validation error rate (`error`):
        a classifier's corrected head whose change the loss cannot show,
        either another loss (other units) or the very same value (Keras
        computes the cross-entropy from the logits behind a softmax over
        one unit, so the fixed sigmoid trains to the same loss)."""
        if (self.before.recipe.fix_output == self.after.recipe.fix_output
                or self.before.error is None or self.after.error is None):
            return False
        return self.loss_changed or math.isclose(
            self.before.score, self.after.score, rel_tol=1e-6
        )

    @property
    def seconds(self) -> float:
        """Training seconds of every run (before, noise, attempts)."""
        return self.before.seconds + self.noise_seconds + sum(
            a["seconds"] for a in self.attempts
        )

    def summary(self) -> str:
        tried = sum(a["trained"] for a in self.attempts)
        if not self.before.problems:
            head = "repair: healthy already, nothing to repair"
        elif self.repaired:
            head = "repair: repaired"
        elif self.kept:
            head = "repair: improved, problems remain"
        else:
            head = "repair: not repaired"
        change = ""
        if self.loss_changed:
            change = f", loss now {self.after.recipe.loss}"
        if self.by_error:
            change += (f"; validation error {self.before.error:.3g} -> "
                       f"{self.after.error:.3g}")
        return (
            f"{head} ({self.objective} {self.before.score:.4g} -> "
            f"{self.after.score:.4g}{change}; {tried} retraining(s), "
            f"{len(self.kept)} change(s) kept)"
        )

    def report(self) -> str:
        """Readable text: before, each attempt, after, the changes kept."""
        lines = [self.summary(), "", "Before:", self.before.text, ""]
        if self.noise is not None:
            lines.append(
                f"Run-to-run noise of {self.objective}: {self.noise:.4g}"
            )
        for i, a in enumerate(self.attempts, 1):
            status = "kept" if a["kept"] else (
                "rolled back" if a["trained"] else "not applied"
            )
            score = "" if a["score"] is None else (
                f" -> {self.objective} {a['score']:.4g}"
            )
            codes = ""
            if a["findings"] is not None:
                found = [f.code for f in a["findings"]
                         if f.severity != "info"]
                codes = f" [{', '.join(found) or 'healthy'}]"
            lines.append(
                f"Attempt {i}: {a['remedy']}({_params(a['params'])}) for "
                f"{a['target']}{score}{codes}: {status} ({a['note']})"
            )
        lines += ["", "After:", self.after.text]
        kept = [f"{a['remedy']}({_params(a['params'])})" for a in self.kept]
        lines.append("Changes kept: " + (", ".join(kept) or "none"))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<RepairReport {self.summary()}>"

    # -- HTML ------------------------------------------------------------

    def _figure(self) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 3.6))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, (title, run) in zip(
            axes, (("before", self.before), ("after", self.after))
        ):
            for key, style in (("loss", "-"), ("val_loss", "--")):
                values = run.history.get(key)
                if values:
                    epochs = range(1, len(values) + 1)
                    ax.plot(epochs, values, style, label=key)
            for f in run.problems:
                if f.epoch is not None:
                    ax.axvline(f.epoch + 1, color="C3", lw=0.8, ls=":")
                    ax.annotate(f.code, (f.epoch + 1, 1), rotation=90,
                                xycoords=("data", "axes fraction"),
                                va="top", fontsize=7, color="C3")
            codes = ", ".join(run.codes) or "healthy"
            ax.set_title(f"{title}: {codes}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            finite = [
                v for k in ("loss", "val_loss")
                for v in run.history.get(k, []) if math.isfinite(v)
            ]
            if finite and min(finite) > 0 and max(finite) / min(finite) > 50:
                ax.set_yscale("log")
        axes[0].set_ylabel("loss")
        axes[0].legend(loc="best", fontsize=8)
        fig.tight_layout()
        return fig

    def to_html(self, path: str | os.PathLike) -> str:
        """Writes a self-contained HTML page and returns its path."""
        rows = []
        for i, a in enumerate(self.attempts, 1):
            status = "kept" if a["kept"] else (
                "rolled back" if a["trained"] else "not applied"
            )
            css = "kept" if a["kept"] else "rolled"
            found = "" if a["findings"] is None else ", ".join(
                f.code for f in a["findings"] if f.severity != "info"
            ) or "healthy"
            rows.append([
                i, a["remedy"], _params(a["params"]), a["target"],
                "" if a["score"] is None else a["score"], found,
                _html.Raw(f'<span class="{css}">{status}</span>'),
                a["note"],
            ])
        parts = [
            _html.paragraph(self.summary(),
                            "info" if self.repaired else "warning"),
            _html.section("Loss curves, findings marked",
                          _html.image(_png(self._figure()),
                                      "before/after loss")),
            _html.section(
                "Attempts",
                _html.table(["#", "remedy", "parameters", "for", "score",
                             "findings", "status", "why"], rows)
                if rows else _html.paragraph("No remedy was needed."),
            ),
            _html.section("Before", _html.preformatted(self.before.text)),
            _html.section("After", _html.preformatted(self.after.text)),
        ]
        return _html.write(path, _html.page("Training repair", *parts))


def _png(fig: Any) -> bytes:
    # `Figure.savefig` renders with Agg, no pyplot involved.
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _better(new: float, old: float, mode: str, noise: float) -> bool:
    if not math.isfinite(new):
        return False
    if not math.isfinite(old):
        return True
    return new < old - noise if mode == "min" else new > old + noise
