"""A labelled corpus of small, seeded training runs for the diagnosis.

    import sys; sys.path.insert(0, "benchmarks")
    import diagnosis_corpus as dc
    for s in dc.settings():
        out = dc.run(s, seed=0, callbacks=[ktk.callbacks.TrainingDiagnosis()])

Each `Setting` is one training run with a known root cause (`code`, a
`ktk.diagnosis` code, or `"healthy"`), a fixed split (`"calibration"` or
`"heldout"`: alternating within each code in the order of definition, never
chosen from results; `"fresh"`: the settings of `fresh.py`, written after
the held-out half was reviewed) and, for a faulty setting, its fixed `twin` (the same
task with the remedy applied, a healthy setting). The labels are justified
by measurements that do not use the kit (see `label.py` and
`labels.json`).

`fit_kwargs` holds the `model.fit` arguments; its optional `"callbacks"`
entry is a zero-argument callable returning fresh callbacks (e.g. an early
stopper), so no callback state is shared between runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Callable

import keras

from . import faulty, fresh, healthy

SPLITS = ("calibration", "heldout")  # alternating; then "fresh"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One seeded training run of the corpus (see the module docstring)."""

    name: str
    code: str
    split: str
    tags: tuple
    make_data: Callable[[int], dict]
    build_model: Callable[[], "keras.Model"]
    fit_kwargs: dict
    twin: str | None = None


def _build() -> list[Setting]:
    rows = [(*r, None) for r in healthy.specs()] + list(faulty.specs())
    seen: dict[str, int] = {}
    out = []
    for name, code, tags, data, model, fit, twin in rows:
        k = seen.get(code, 0)
        seen[code] = k + 1
        out.append(Setting(
            name=name, code=code, split=SPLITS[k % 2], tags=tuple(tags),
            make_data=data, build_model=model, fit_kwargs=dict(fit),
            twin=twin,
        ))
    for name, code, tags, data, model, fit, twin in fresh.specs():
        out.append(Setting(
            name=name, code=code, split="fresh", tags=tuple(tags),
            make_data=data, build_model=model, fit_kwargs=dict(fit),
            twin=twin,
        ))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise RuntimeError("duplicate setting names in the corpus")
    known = set(names)
    for s in out:
        if s.twin is not None and s.twin not in known:
            raise RuntimeError(f"{s.name}: unknown twin {s.twin}")
    return out


_SETTINGS: list[Setting] | None = None


def settings() -> list[Setting]:
    """All settings, healthy first, in their fixed order."""
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = _build()
    return list(_SETTINGS)


def get(name: str) -> Setting:
    """The setting called `name`."""
    for s in settings():
        if s.name == name:
            return s
    raise KeyError(name)


def supported_names() -> set[str] | None:
    """The settings whose label the stored measurements support (see
    `label.py`: every criterion of `labels.json` holds), or None when there
    are no stored labels. The others are to be fixed, not scored."""
    path = os.path.join(os.path.dirname(__file__), "labels.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        stored = json.load(fh)["settings"]
    return {name for name, v in stored.items() if v.get("supported")}


def fit_arguments(setting: Setting, data: dict, callbacks=()) -> dict:
    """The keyword arguments of `model.fit` for one run of `setting`."""
    kw = dict(setting.fit_kwargs)
    extra = kw.pop("callbacks", None)
    cbs = [*callbacks, *(extra() if extra is not None else [])]
    for key, value in data.items():
        if key not in ("x", "y"):
            kw[key] = value
    return {"x": data["x"], "y": data["y"], "callbacks": cbs, "verbose": 0,
            **kw}


def run(
    setting: Setting, seed: int, callbacks=(), backend_note=None,
    prebuilt=None,
) -> dict:
    """Trains `setting` once from `seed`.

    `prebuilt`: an optional `(data, model)` already made right after
    `keras.utils.set_random_seed(seed)` (the measuring script uses it to
    look at the initial model first; nothing it does draws random numbers).

    Returns `{"history": dict of per-epoch lists, "seconds": float}`, plus
    `"model"` and `"data"` for callers that measure more, and `"backend"`
    (`backend_note` or the Keras backend).
    """
    if prebuilt is None:
        keras.utils.set_random_seed(seed)
        data = setting.make_data(seed)
        model = setting.build_model()
    else:
        data, model = prebuilt
    start = time.perf_counter()
    hist = model.fit(**fit_arguments(setting, data, callbacks))
    seconds = time.perf_counter() - start
    history = {k: [float(x) for x in v] for k, v in hist.history.items()}
    return {
        "history": history, "seconds": seconds, "model": model,
        "data": data, "backend": backend_note or keras.backend.backend(),
    }
