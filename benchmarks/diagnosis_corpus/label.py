"""Measures every corpus run and checks that the measurements support its label.

    python benchmarks/diagnosis_corpus/label.py [--seeds 0,1,2] [--only PREFIX]

Runs each setting at each seed on TensorFlow with plain Keras measurements
(`measure.py`: a `tf.GradientTape`, a sub-model, `model.predict`; nothing
from `keras_training_kit.diagnosis`) and writes `labels.json` next to this
file: per setting and seed the measurements, and per setting the support
criteria with their outcome. A label is kept only when every criterion
holds; a setting whose measurements do not support its label is to be
fixed (the setting changed) or dropped, never relabelled.

The criteria compare a faulty setting with its fixed twin (same task, the
remedy applied) paired by seed, so they need no absolute threshold of the
kind the kit uses; the few absolute numbers below are this corpus' own
(stated with each criterion), not the kit's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.dirname(HERE))

import warnings  # noqa: E402

import numpy as np  # noqa: E402

import diagnosis_corpus as dc  # noqa: E402

LABELS = os.path.join(HERE, "labels.json")

CLEAR = 0.25  # "clearly better": the twin's mean is >= 25% lower
HEALTHY_LEARNS = 0.7  # healthy: val error <= 0.7 x the constant predictor's
HEALTHY_HOLDS = 1.3  # healthy: last val loss <= 1.3 x its minimum


def _mean(vals):
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def clearly_lower(faulty, twin) -> tuple[bool, str]:
    """Twin lower at every seed and its mean >= CLEAR below the faulty's."""
    pairs = [(f, t) for f, t in zip(faulty, twin)]
    if any(f is None or t is None for f, t in pairs):
        return False, f"missing values {pairs}"
    every = all(t < f for f, t in pairs)
    fm, tm = _mean(faulty), _mean(twin)
    ok = every and tm <= (1 - CLEAR) * fm
    return ok, f"faulty {_r(faulty)} vs twin {_r(twin)}"


def _r(vals):
    return [None if v is None else float(f"{v:.4g}") for v in vals]


def _col(runs, key):
    return [r.get(key) for r in runs]


def _factor(faulty, twin, factor, above=True):
    """faulty >= factor x twin at every seed (or <= twin / factor)."""
    ok = all(
        f is not None and t is not None and (
            f >= factor * t if above else f * factor <= t
        )
        for f, t in zip(faulty, twin)
    )
    return ok, f"faulty {_r(faulty)} vs twin {_r(twin)}"


def criteria(setting, runs, twin_runs) -> dict:
    """{criterion: (passed, detail)} for one setting (runs by seed)."""
    out = {}
    code = setting.code
    if code == "healthy":
        out["finite"] = (
            all(r["nan_epoch"] is None for r in runs),
            f"nan epochs {_col(runs, 'nan_epoch')}",
        )
        out["learns"] = (
            all(r["val_err"] <= HEALTHY_LEARNS * r["chance_err"]
                for r in runs),
            f"val_err {_r(_col(runs, 'val_err'))} chance "
            f"{_r(_col(runs, 'chance_err'))}",
        )
        if "early_stopping" not in setting.tags:
            rises = [
                r["val_loss"][-1] / min(r["val_loss"])
                if r["val_loss"] and min(r["val_loss"]) > 0 else None
                for r in runs
            ]
            out["holds"] = (
                all(x is not None and x <= HEALTHY_HOLDS for x in rises),
                f"last/min val_loss {_r(rises)}",
            )
        if setting.name == "healthy/digits_half_dead":
            out["half_never_fires"] = (
                all((r["dead_fraction"] or 0) >= 0.45 for r in runs),
                f"dead {_r(_col(runs, 'dead_fraction'))}",
            )
        return out
    twin = {k: _col(twin_runs, k) for k in twin_runs[0]}
    me = {k: _col(runs, k) for k in runs[0]}
    if code == "diverged":
        out["nan_epoch"] = (
            all(e is not None for e in me["nan_epoch"]),
            f"nan epochs {me['nan_epoch']} ({me['nan_where']})",
        )
        out["twin_finite"] = (
            all(e is None for e in twin["nan_epoch"]),
            f"twin nan epochs {twin['nan_epoch']}",
        )
        return out
    if code == "underfitting":
        out["twin_fits_train"] = clearly_lower(
            me["train_err"], twin["train_err"]
        )
    elif code == "overfitting":
        out["twin_val_loss"] = clearly_lower(
            me["val_loss_end"], twin["val_loss_end"]
        )
        rise = [r["val_loss"][-1] / min(r["val_loss"]) for r in runs]
        out["val_loss_rises"] = (
            all(x >= 1.3 for x in rise), f"last/min val_loss {_r(rise)}"
        )
        gap = [r["loss"][-1] / r["val_loss"][-1] for r in runs]
        out["train_below_val"] = (
            all(x <= 0.5 for x in gap), f"train/val loss {_r(gap)}"
        )
    else:
        out["twin_val_err"] = clearly_lower(me["val_err"], twin["val_err"])
    if code == "lr_too_high":
        out["bigger_updates"] = _factor(
            me["update_ratio"], twin["update_ratio"], 3.0
        )
    elif code == "lr_too_low":
        out["smaller_updates"] = _factor(
            me["update_ratio"], twin["update_ratio"], 3.0, above=False
        )
        out["steady_decline"] = (
            all(x is not None and x >= 0.75
                for x in me["loss_fall_fraction"]),
            f"fraction of epochs with a lower loss "
            f"{_r(me['loss_fall_fraction'])}",
        )
    elif code == "noisy_loss":
        out["noisier_batches"] = _factor(me["batch_cv"], twin["batch_cv"], 2.0)
    elif code == "vanishing_gradients":
        out["grad_ratio"] = _factor(
            me["grad_ratio_init"], twin["grad_ratio_init"], 10.0,
            above=False,
        )
    elif code == "exploding_gradients":
        out["grad_norm"] = _factor(
            me["grad_norm_init"], twin["grad_norm_init"], 10.0
        )
    elif code == "dead_units":
        out["dead_fraction"] = (
            all((x or 0) >= 0.9 for x in me["dead_fraction"]),
            f"dead {_r(me['dead_fraction'])}",
        )
    elif code == "saturated_units":
        d = [
            (f or 0) - (t or 0) for f, t in
            zip(me["saturated_fraction"], twin["saturated_fraction"])
        ]
        out["more_saturated"] = (
            all(x >= 0.3 for x in d), f"faulty - twin saturated {_r(d)}"
        )
    elif code == "unscaled_inputs":
        out["input_spread"] = _factor(
            me["input_spread"], twin["input_spread"], 10.0
        )
    elif code == "unscaled_targets":
        out["target_scale"] = _factor(
            me["target_max_abs"], twin["target_max_abs"], 1e4
        )
    elif code == "high_initial_loss":
        out["initial_loss"] = _factor(
            me["initial_loss"], twin["initial_loss"], 3.0
        )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--only", default=None,
        help="comma-separated setting-name prefixes to (re)measure; the "
        "others keep their stored runs ('' re-judges without running)",
    )
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    from diagnosis_corpus.measure import measure

    warnings.simplefilter("ignore")

    runs = {}
    if os.path.exists(LABELS):
        with open(LABELS) as fh:
            runs = {
                n: v["runs"] for n, v in json.load(fh)["settings"].items()
            }
    if os.path.exists(LABELS + ".partial"):  # an interrupted pass
        with open(LABELS + ".partial") as fh:
            runs.update(json.load(fh))
    prefixes = args.only.split(",") if args.only is not None else None
    todo = [
        s for s in dc.settings()
        if prefixes is None or any(
            p and s.name.startswith(p) for p in prefixes
        )
    ]
    start = time.perf_counter()
    for s in todo:
        runs[s.name] = {}
        try:
            for seed in seeds:
                runs[s.name][str(seed)] = measure(s, seed, dc.run)
        except Exception as exc:  # report it; the setting must be fixed
            print(f"{s.name}: FAILED {type(exc).__name__}: {exc}")
            runs.pop(s.name)
            continue
        with open(LABELS + ".partial", "w") as fh:
            json.dump(runs, fh)
        print(f"{s.name:45s} {_r(_col(list(runs[s.name].values()), 'val_err'))}"
              f" {sum(r['seconds'] for r in runs[s.name].values()):.1f}s",
              flush=True)
    out = {}
    for s in dc.settings():
        if s.name not in runs:
            continue
        mine = [runs[s.name][str(k)] for k in seeds if str(k) in runs[s.name]]
        twin = None
        if s.twin is not None and s.twin in runs:
            twin = [runs[s.twin][str(k)] for k in seeds]
        crit = criteria(s, mine, twin) if (twin or s.code == "healthy") else {
            "twin_measured": (False, "twin not measured")
        }
        out[s.name] = {
            "code": s.code, "split": s.split, "twin": s.twin,
            "tags": list(s.tags), "fit": signature(s),
            "criteria": {k: [bool(v[0]), v[1]] for k, v in crit.items()},
            "supported": all(v[0] for v in crit.values()),
            "runs": runs[s.name],
        }
    with open(LABELS, "w") as fh:
        json.dump({"seeds": seeds, "settings": out}, fh, indent=1,
                  allow_nan=True)
    if os.path.exists(LABELS + ".partial"):
        os.unlink(LABELS + ".partial")
    bad = [n for n, v in out.items() if not v["supported"]]
    print(f"\n{len(out)} settings, {len(bad)} unsupported, "
          f"{time.perf_counter() - start:.0f}s")
    for n in bad:
        fails = {k: v[1] for k, v in out[n]["criteria"].items() if not v[0]}
        print(f"  UNSUPPORTED {n}: {fails}")
    return 0


def signature(setting) -> str:
    """The run-defining fit arguments, to spot a stale label."""
    kw = {
        k: v for k, v in setting.fit_kwargs.items() if k != "callbacks"
    }
    return repr(sorted(kw.items())) + (
        " +callbacks" if "callbacks" in setting.fit_kwargs else ""
    )


if __name__ == "__main__":
    sys.exit(main())
