"""Figures and the HTML page of a `SearchResult` (through `_html`).

Figures are `matplotlib.figure.Figure` objects built without pyplot, so no
global state or GUI backend is touched; `_html` turns them into PNG.
"""

from __future__ import annotations

import math
from typing import Any

from keras_training_kit import _html

DIVERGED, PRUNED = "diverged", "pruned"


def _finite(t: dict) -> bool:
    return t["score"] is not None and math.isfinite(t["score"])


def _names(result: Any) -> list[str]:
    names = []
    for t in result.trials:
        for k in t["hyperparameters"]:
            if k not in names:
                names.append(k)
    return names


def best_so_far(result: Any) -> list[tuple[int, float]]:
    """`(trial number, best score so far)` over completed trials."""
    pick = max if result.direction == "max" else min
    out, run = [], None
    for i, t in enumerate(result.trials):
        if t["status"] == "completed" and _finite(t):
            run = t["score"] if run is None else pick(run, t["score"])
            out.append((i + 1, run))
    return out


def _curve(ax: Any, result: Any) -> None:
    ok = [(i + 1, t) for i, t in enumerate(result.trials) if _finite(t)]
    done = [(i, t["score"]) for i, t in ok if t["status"] == "completed"]
    cut = [(i, t["score"]) for i, t in ok if t["status"] == PRUNED]
    if done:
        ax.plot(*zip(*done), "o", label="trial")
    if cut:
        ax.plot(*zip(*cut), "o", mfc="none", label=PRUNED)
    best = best_so_far(result)
    if best:
        ax.step(*zip(*best), where="post", label="best so far")
    bad = [i + 1 for i, t in enumerate(result.trials)
           if t["status"] == DIVERGED]
    if bad and ok:
        scores = [t["score"] for _, t in ok]
        top = max(scores) if result.direction == "min" else min(scores)
        ax.plot(bad, [top] * len(bad), "rx", label=DIVERGED)
    ax.set_xlabel("trial")
    ax.set_ylabel(result.objective)
    ax.set_title("score per trial")
    ax.legend(fontsize=7)


def _knob(ax: Any, result: Any, name: str) -> None:
    ok = [t for t in result.trials if _finite(t)]
    xs = [t["hyperparameters"].get(name) for t in ok]
    scores = [t["score"] for t in ok]
    numeric = all(
        isinstance(x, (int, float)) and not isinstance(x, bool)
        for x in xs if x is not None
    )
    if numeric:
        pairs = [(x, s) for x, s in zip(xs, scores) if x is not None]
        if pairs:
            ax.plot(*zip(*pairs), "o")
        positive = [p[0] for p in pairs if p[0] > 0]
        if positive and len(positive) == len(pairs) and (
            max(positive) / min(positive) >= 100
        ):
            ax.set_xscale("log")
    else:
        cats = []
        for x in xs:
            if str(x) not in cats:
                cats.append(str(x))
        ax.plot([cats.index(str(x)) for x in xs], scores, "o")
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats, rotation=30, fontsize=7)
    ax.set_xlabel(name)
    ax.set_ylabel(result.objective)


def _pareto(ax: Any, result: Any) -> None:
    (n1, _), (n2, _) = result.objectives[:2]
    done = [t for t in result.trials
            if t["status"] == "completed" and t.get("scores")]
    front = result.pareto_front
    ids = {t["trial_id"] for t in front}
    rest = [t for t in done if t["trial_id"] not in ids]
    if rest:
        ax.plot([t["scores"][n1] for t in rest],
                [t["scores"][n2] for t in rest], "o", alpha=0.5,
                label="dominated")
    if front:
        pts = sorted((t["scores"][n1], t["scores"][n2]) for t in front)
        ax.plot(*zip(*pts), "o-", color="C3", label="Pareto front")
    ax.set_xlabel(n1)
    ax.set_ylabel(n2)
    ax.set_title("Pareto front")
    ax.legend(fontsize=7)


def figure_png(fig: Any, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (`_html.figure_png` passes `dpi` to
    `print_png`, which this matplotlib rejects; `savefig` takes it)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _img(fig: Any, alt: str) -> str:
    return _html.image(figure_png(fig), alt)


def _figure(panels: int, ncols: int = 3) -> tuple[Any, list]:
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, panels))
    nrows = math.ceil(panels / ncols)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(panels)]
    return fig, axes


def overview_figure(result: Any) -> Any:
    """Score per trial, score against each knob, and the Pareto front."""
    names = _names(result)
    multi = bool(result.objectives)
    fig, axes = _figure(1 + len(names) + multi)
    _curve(axes[0], result)
    for ax, name in zip(axes[1:], names):
        _knob(ax, result, name)
    if multi:
        _pareto(axes[-1], result)
    fig.tight_layout()
    return fig


def curve_figure(result: Any) -> Any:
    fig, (ax,) = _figure(1)
    _curve(ax, result)
    fig.tight_layout()
    return fig


def knobs_figure(result: Any) -> Any | None:
    names = _names(result)
    if not names:
        return None
    fig, axes = _figure(len(names))
    for ax, name in zip(axes, names):
        _knob(ax, result, name)
    fig.tight_layout()
    return fig


def pareto_figure(result: Any) -> Any:
    fig, (ax,) = _figure(1)
    _pareto(ax, result)
    fig.tight_layout()
    return fig


def _rows(result: Any, trials: list[dict]) -> tuple[list, list]:
    names = _names(result)
    objectives = [n for n, _ in result.objectives or []]
    head = ["trial", "status"] + (
        objectives if objectives else [result.objective]
    ) + names
    rows = []
    for t in trials:
        scores = (
            [(t.get("scores") or {}).get(n, "") for n in objectives]
            if objectives
            else ["" if t["score"] is None else t["score"]]
        )
        rows.append(
            [t["trial_id"], t["status"], *scores]
            + [t["hyperparameters"].get(n, "") for n in names]
        )
    return head, rows


def html_page(result: Any) -> str:
    """The whole report as one self-contained HTML document."""
    counts: dict[str, int] = {}
    for t in result.trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    best = result.best_trial
    summary = [
        ("objective", ", ".join(f"{n} ({d})" for n, d in result.objectives)
         if result.objectives else f"{result.objective} ({result.direction})"),
        ("trials", len(result.trials)),
        *sorted(counts.items()),
        ("best score", "" if best is None else best["score"]),
        ("best hyperparameters",
         "" if best is None else result.best_hyperparameters),
    ]
    parts = [
        _html.section("Summary", _html.table(["", "value"], summary)),
        _html.section(
            "Best so far",
            _img(curve_figure(result), "score per trial"),
        ),
    ]
    knobs = knobs_figure(result)
    if knobs is not None:
        parts.append(_html.section(
            "Score against each hyperparameter",
            _img(knobs, "score against each hyperparameter"),
        ))
    if result.objectives:
        head, rows = _rows(result, result.pareto_front)
        parts.append(_html.section(
            "Pareto front",
            _html.paragraph(
                "Trials no other trial beats in every objective."
            ),
            _img(pareto_figure(result), "Pareto front"),
            _html.table(head, rows),
        ))
    head, rows = _rows(result, result.trials)
    parts.append(_html.section("Trials", _html.table(head, rows)))
    return _html.page("Hyperparameter search", *parts)
