"""How often `ktk.diagnosis.repair` repairs the diagnosis corpus's faulty runs.

Over the held-out half of `benchmarks/diagnosis_corpus` (the calibration
half is where the diagnosis' thresholds were set), each faulty setting is
handed to `repair` as a user would: its `build_model`, its data, its fit
arguments. A run counts as **repaired** when

- `after` has no warning or error,
- its validation objective (`val_loss`, measured by `model.evaluate`
  without weight penalties) is better than `before`'s (the validation
  error rate, for a classifier's corrected head that the loss cannot
  show), and
- where the healthy twin is trained on the same validation targets, the
  objective is within 10% of the twin's (trained here with the same seed
  and scored the same way): `after <= 1.1 * twin` (losses). The twin is
  trained for the faulty run's epochs, the budget `repair` is given (the
  corpus' twins of many faulty settings train half as long, and a shorter
  run of a net that overfits late scores better for that alone); the
  twin at its own epochs is printed next to it (`twin_own_epochs`) and
  counted as a second, stricter column.

The count is also given over the faulty settings whose label the corpus'
own measurements support (`labels.json`: the fault measurably hurts and
shows in a kit-independent measurement), the settings that
`diagnosis_accuracy.py` scores; the others are listed, not dropped.

It also counts runs made worse (`after` worse than `before`: must be 0),
and, over the held-out healthy settings, those that come back untouched
(no kept change). Training seconds are wall-clock on whatever machine runs
it (shared machines: say so next to the numbers).

Goal: >= 90% of the faulty runs repaired, none worse, healthy untouched.

    python benchmarks/repair.py [--split heldout] [--only CODE_OR_NAME]
        [--limit N] [--healthy N] [--max-attempts 6] [--seed 0]
        [--json out.json]

Without the corpus package, four small faulty settings of this file's own
(in the corpus' `Setting` shape) are used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_training_kit as ktk  # noqa: E402

WITHIN = 0.10  # of the healthy twin's objective


def corpus():
    try:
        import diagnosis_corpus as dc
    except ImportError:
        return None
    return dc


def own_settings():
    """Four small faulty settings and their twins, in the Setting shape."""
    import dataclasses
    from typing import Callable

    from sklearn.datasets import load_breast_cancer, load_digits

    @dataclasses.dataclass(frozen=True)
    class Setting:
        name: str
        code: str
        split: str
        tags: tuple
        make_data: Callable
        build_model: Callable
        fit_kwargs: dict
        twin: str | None = None

    def digits(seed, scaled=True):
        x, y = load_digits(return_X_y=True)
        x = x.astype("float32")
        if scaled:
            x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        idx = np.random.default_rng(seed).permutation(len(x))
        x, y = x[idx], y[idx].astype("int32")
        return {"x": x[:1400], "y": y[:1400],
                "validation_data": (x[1400:], y[1400:])}

    def cancer(seed):
        x, y = load_breast_cancer(return_X_y=True)
        idx = np.random.default_rng(seed).permutation(len(x))
        x, y = x[idx].astype("float32"), y[idx].astype("int32")
        return {"x": x[:450], "y": y[:450],
                "validation_data": (x[450:], y[450:])}

    def mlp(inputs, classes, lr, opt="adam", **kw):
        def build():
            model = keras.Sequential([
                keras.Input((inputs,)),
                keras.layers.Dense(64, activation="relu", **kw),
                keras.layers.Dense(classes, activation="softmax"),
            ])
            optimizer = (keras.optimizers.Adam(lr) if opt == "adam"
                         else keras.optimizers.SGD(lr))
            model.compile(optimizer, "sparse_categorical_crossentropy")
            return model
        return build

    neg = keras.initializers.Constant(-10.0)
    fit = {"epochs": 10, "batch_size": 32}
    return [
        Setting("healthy/digits", "healthy", "heldout", (), digits,
                mlp(64, 10, 1e-3), fit),
        Setting("healthy/cancer", "healthy", "heldout", (), cancer,
                mlp(30, 2, 1e-3), fit),
        Setting("lr_too_high/digits_adam", "lr_too_high", "heldout", (),
                digits, mlp(64, 10, 0.3), fit, "healthy/digits"),
        Setting("unscaled_inputs/cancer_raw", "unscaled_inputs", "heldout",
                (), cancer, mlp(30, 2, 1e-3), fit, None),
        Setting("dead_units/digits_neg_bias", "dead_units", "heldout", (),
                digits, mlp(64, 10, 1e-3, bias_initializer=neg), fit,
                "healthy/digits"),
        Setting("diverged/digits_sgd", "diverged", "heldout", (), digits,
                mlp(64, 10, 50.0, opt="sgd"), fit, "healthy/digits"),
    ]


def fresh_fit_kwargs(setting, data):
    kw = dict(setting.fit_kwargs)
    extra = kw.pop("callbacks", None)
    if callable(extra):
        kw["callbacks"] = list(extra())
    elif extra:
        kw["callbacks"] = list(extra)
    for key, value in data.items():
        if key not in ("x", "y", "validation_data"):
            kw[key] = value
    return kw


def data_loss(model, xv, yv):
    value = float(model.evaluate(xv, yv, verbose=0, return_dict=True,
                                 batch_size=256)["loss"])
    if model.losses:
        value -= float(sum(float(keras.ops.convert_to_numpy(p))
                           for p in model.losses))
    return value


def twin_score(setting, by_name, seed, faulty_data, epochs=None):
    """The twin's val_loss, or None when it is not comparable; trained for
    `epochs` when given, else for the twin's own epochs."""
    if setting.twin is None or setting.twin not in by_name:
        return None, "no twin"
    twin = by_name[setting.twin]
    keras.utils.set_random_seed(seed)
    data = twin.make_data(seed)
    yv_t = np.asarray(data["validation_data"][1])
    yv_f = np.asarray(faulty_data["validation_data"][1])
    if yv_t.shape != yv_f.shape or not np.allclose(
        yv_t, yv_f, equal_nan=True
    ):
        return None, "twin has other targets"
    model = twin.build_model()
    kw = fresh_fit_kwargs(twin, data)
    if epochs is not None:
        kw["epochs"] = epochs
    model.fit(data["x"], data["y"], validation_data=data["validation_data"],
              verbose=0, **kw)
    return data_loss(model, *data["validation_data"][:2]), ""


def repair_one(setting, seed, max_attempts):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    data = setting.make_data(seed)
    kw = fresh_fit_kwargs(setting, data)
    epochs = kw.pop("epochs", 20)
    start = time.perf_counter()
    report = ktk.diagnosis.repair(
        setting.build_model, data["x"], data["y"],
        validation_data=data["validation_data"], epochs=epochs,
        max_attempts=max_attempts, seed=seed, verbose=0, **kw,
    )
    return report, data, time.perf_counter() - start


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--only", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--healthy", type=int, default=None,
                        help="at most this many healthy settings")
    parser.add_argument("--max-attempts", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    dc = corpus()
    every = dc.settings() if dc is not None else own_settings()
    by_name = {s.name: s for s in every}
    chosen = [s for s in every if s.split == args.split]
    if args.only:
        chosen = [s for s in chosen if args.only in s.name]
    faulty = [s for s in chosen if s.code != "healthy"][: args.limit]
    healthy = [s for s in chosen if s.code == "healthy"][: args.healthy]
    print(f"# repair benchmark: {len(faulty)} faulty, {len(healthy)} "
          f"healthy settings ({args.split}; corpus: "
          f"{'diagnosis_corpus' if dc else 'own fallback'}), backend "
          f"{keras.backend.backend()}, max_attempts={args.max_attempts}")
    supported = dc.supported_names() if dc is not None else None
    rows = []
    for s in faulty + healthy:
        report, data, seconds = repair_one(s, args.seed, args.max_attempts)
        budget = s.fit_kwargs.get("epochs", 20)
        twin, why = (None, "healthy") if s.code == "healthy" else (
            twin_score(s, by_name, args.seed, data, epochs=budget)
        )
        own = twin
        if twin is not None and by_name[s.twin].fit_kwargs.get(
            "epochs", 20
        ) != budget:
            own, _ = twin_score(s, by_name, args.seed, data)
        b, a = report.before.score, report.after.score

        def near(reference):
            return None if reference is None else bool(
                math.isfinite(a) and a <= (1 + WITHIN) * reference
            )

        within, within_own = near(twin), near(own)
        # A classifier's corrected head, which the loss cannot show (MSE
        # on class ids -> a cross-entropy; softmax over one unit -> sigmoid,
        # the same loss from the logits): compared by validation error.
        cb, ca = (report.before.error, report.after.error) if (
            report.by_error) else (b, a)
        better = (not math.isfinite(cb) and math.isfinite(ca)) or ca < cb
        healthy_better = not report.after.problems and better
        worse = (math.isfinite(cb) and not math.isfinite(ca)) or ca > cb
        row = {
            "setting": s.name, "code": s.code,
            "before": [f.code for f in report.before.problems],
            "after": [f.code for f in report.after.problems],
            "score_before": b, "score_after": a, "twin": twin,
            "error_before_after": [cb, ca] if report.by_error else None,
            "twin_note": why, "within_10pct": within,
            "twin_own_epochs": own, "within_10pct_own_epochs": within_own,
            "retrainings": sum(x["trained"] for x in report.attempts),
            "kept": [x["remedy"] for x in report.kept],
            "seconds": seconds, "worse": bool(worse),
            "repaired": bool(healthy_better and within is not False),
            "repaired_own_epochs": bool(healthy_better
                                        and within_own is not False),
            "untouched": not report.kept,
            "label_supported": None if supported is None
            else s.name in supported,
        }
        rows.append(row)
        print(f"{s.name}: before {row['before']} {fmt(b)} -> after "
              f"{row['after']} {fmt(a)} (twin {fmt(twin)}; at its own "
              f"epochs {fmt(own)}), kept "
              f"{row['kept']}, {row['retrainings']} retrainings, "
              f"{seconds:.0f} s", flush=True)
    print()
    print("| setting | before | after | val_loss before -> after | twin "
          "(own epochs) | kept | retrainings | s | repaired (vs own "
          "epochs) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {', '.join(r['before']) or 'healthy'} | "
              f"{', '.join(r['after']) or 'healthy'} | "
              f"{fmt(r['score_before'])} -> {fmt(r['score_after'])} | "
              f"{fmt(r['twin'])} ({fmt(r['twin_own_epochs'])}) | "
              f"{', '.join(r['kept']) or '-'} | "
              f"{r['retrainings']} | {r['seconds']:.0f} | "
              f"{'yes' if r['repaired'] else 'no'} "
              f"({'yes' if r['repaired_own_epochs'] else 'no'}) |")
    fr = [r for r in rows if r["code"] != "healthy"]
    hr = [r for r in rows if r["code"] == "healthy"]
    print()
    if fr:
        n = sum(r["repaired"] for r in fr)
        own = sum(r["repaired_own_epochs"] for r in fr)
        print(f"faulty repaired: {n}/{len(fr)} = {n / len(fr):.0%} "
              f"(goal >= 90%; against the twin at its own epochs: "
              f"{own}/{len(fr)} = {own / len(fr):.0%}); worse: "
              f"{sum(r['worse'] for r in fr)} (goal 0)"
              f"; retrainings median "
              f"{np.median([r['retrainings'] for r in fr]):.0f}; seconds "
              f"median {np.median([r['seconds'] for r in fr]):.0f}, total "
              f"{sum(r['seconds'] for r in fr):.0f}")
        sup = [r for r in fr if r["label_supported"]]
        if supported is not None:
            n = sum(r["repaired"] for r in sup)
            print(f"over the {len(sup)} faulty settings whose label the "
                  f"corpus' measurements support: {n}/{len(sup)} = "
                  f"{n / max(len(sup), 1):.0%} repaired; not supported: "
                  + (", ".join(f"{r['setting']} "
                               f"({'yes' if r['repaired'] else 'no'})"
                               for r in fr if not r["label_supported"])
                     or "none"))
    if hr:
        n = sum(r["untouched"] for r in hr)
        print(f"healthy untouched: {n}/{len(hr)} (goal all); flagged by "
              f"the diagnosis: {sum(bool(r['before']) for r in hr)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1, default=str)


if __name__ == "__main__":
    main()
