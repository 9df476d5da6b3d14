"""keras_training_kit demo: the course's whole training cycle on digits.

Six steps on scikit-learn's bundled digits (no download), each a section
of one self-contained HTML page, `demo_output/report.html` (inline CSS,
figures as PNG data URIs, no external URL):

1. split train / validation / test and lock the test set (`HoldoutSet`);
2. feature scaling: the same net on raw pixels and on standardized ones,
   diagnosed (`unscaled_inputs`);
3. a baseline whose learning rate is far too high, diagnosed, and
   `ktk.diagnosis.repair` fixing it (before/after);
4. the course's optimizers side by side (SGD, momentum, Adagrad, RMSProp,
   Adam);
5. a small Bayesian search with k-fold cross-validation over learning rate,
   dropout, L2 and batch size, early stopping inside each trial;
6. the chosen model evaluated once on the test set; a second evaluation is
   refused.

The sections are the kit's own renderers' output
(`TrainingDiagnosis.to_html`, `RepairReport.to_html`,
`SearchResult.to_html`) composed with `keras_training_kit._html`; a renderer
missing from the installed version is reported as "not available in this
version" in its section.

    make demo                          # or: .venv/bin/python examples/demo.py
    python examples/demo.py --quick    # a fast mode (the test uses it)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.quiet()

import keras  # noqa: E402

import keras_training_kit as ktk  # noqa: E402
from keras_training_kit import _html  # noqa: E402
from _report import (  # noqa: E402
    Progress, curves_figure, kit_html, unavailable,
)

_common.quiet_absl()

STEPS = (
    ("step-1", "1. Data: train / validation / test, test set locked"),
    ("step-2", "2. Feature scaling: raw pixels vs standardized"),
    ("step-3", "3. A run that trains badly, its diagnosis and repair"),
    ("step-4", "4. The course's optimizers side by side"),
    ("step-5", "5. Bayesian search with k-fold cross-validation"),
    ("step-6", "6. The test set, once"),
)


def settings(quick: bool) -> dict:
    if quick:
        return dict(
            epochs=3, opt_epochs=3, repair_epochs=6, max_attempts=2,
            trials=2, folds=2, search_epochs=2, train=400,
        )
    return dict(
        epochs=20, opt_epochs=20, repair_epochs=15, max_attempts=4,
        trials=8, folds=3, search_epochs=12, train=None,
    )


def mlp(dropout: float = 0.0, l2: float = 0.0, scale=None) -> keras.Model:
    """The demo's net: 64 -> 64 ReLU -> 10 softmax."""
    layers = [keras.Input((64,))]
    if scale is not None:
        layers.append(scale)
    layers.append(keras.layers.Dense(64, activation="relu"))
    if dropout:
        layers.append(ktk.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    if l2:
        model = ktk.regularizers.penalize(model, l2=l2)
    return model


def compile_(model, optimizer):
    model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def step_data(cfg):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x.astype("float32"), y.astype("int32")
    (xt, yt), (xv, yv), (xs, ys) = ktk.data.train_val_test_split(
        x, y, val_size=0.15, test_size=0.15, stratify=True, seed=0
    )
    if cfg["train"]:
        xt, yt = xt[: cfg["train"]], yt[: cfg["train"]]
    mean, std = xt.mean(axis=0), xt.std(axis=0)
    std[std < 1e-3] = 1.0
    raw = (xt, yt), (xv, yv)
    scaled = tuple(((a - mean) / std, b) for a, b in ((xt, yt), (xv, yv)))
    test = ktk.data.HoldoutSet((xs - mean) / std, ys)
    print(f"  train {len(xt)}, validation {len(xv)}, test {len(xs)} "
          "(locked in a HoldoutSet)")
    html = [
        _html.paragraph(
            "scikit-learn's digits (8x8 images, 10 classes), split "
            "stratified with ktk.data.train_val_test_split. The test set "
            "goes into ktk.data.HoldoutSet at once: the course's rule is to "
            "choose everything on validation data and to run on the test "
            "set only once, at the very end. Standardization uses the "
            "training statistics only."
        ),
        _html.table(
            ["set", "images", "use"],
            [["train", len(xt), "fit"],
             ["validation", len(xv), "every choice below"],
             ["test", len(xs), "once, in step 6"]],
        ),
    ]
    return raw, scaled, test, html


def step_scaling(cfg, raw, scaled):
    runs, rows, parts = {}, [], []
    for name, ((x, y), (xv, yv)) in (("raw pixels", raw),
                                      ("standardized", scaled)):
        keras.utils.set_random_seed(0)
        model = compile_(mlp(), ktk.optimizers.SGD(0.1))
        diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
        history = model.fit(
            x, y, validation_data=(xv, yv), epochs=cfg["epochs"],
            batch_size=32, verbose=0,
            callbacks=[diag, Progress(name, cfg["epochs"])],
        )
        h = history.history
        runs[name] = h
        codes = ", ".join(f.code for f in diag.findings) or "-"
        rows.append([name, h["loss"][-1], h["val_loss"][-1],
                     h["val_accuracy"][-1], codes])
        body = kit_html(diag)
        parts.append(_html.section(
            f"TrainingDiagnosis of the run on {name}",
            body if body is not None else (
                unavailable("TrainingDiagnosis.to_html")
                + _html.preformatted(diag.report())
            ),
            level=3,
        ))
        keras.backend.clear_session()
    intro = _html.paragraph(
        "The same net and optimizer (SGD, learning rate 0.1) on raw pixels "
        "(0..16, some nearly constant) and on standardized ones "
        "x <- (x - m_i) / sigma_i. The course: gradient descent converges "
        "much faster on standardized inputs. Raw pixels up to 16 act like a "
        "16-fold larger step on the first layer: at this rate the raw run "
        "is unstable (at 0.01 it is stable but slow; "
        "examples/feature_scaling.py compares each at its best rate)."
    )
    table = _html.table(
        ["inputs", "loss", "val_loss", "val_accuracy", "findings"], rows
    )
    figure = curves_figure(runs, "Validation loss: raw vs standardized")
    return [intro, table, figure, *parts], rows


def broken_model():
    """8 sigmoid layers: the course's vanishing gradients (topic 5)."""
    layers = [keras.Input((64,))]
    for _ in range(8):
        layers.append(keras.layers.Dense(64, activation="sigmoid"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return compile_(keras.Sequential(layers), ktk.optimizers.SGD(0.1))


def step_repair(cfg, scaled):
    (x, y), (xv, yv) = scaled
    intro = _html.paragraph(
        "Baseline: a deep net of 8 sigmoid layers (64 units each) trained "
        "with SGD(0.1) on standardized digits. The course: deeper is not "
        "automatically better; with sigmoid the gradients vanish in the "
        "early layers; batch normalization before each nonlinearity, or "
        "ReLU instead of the sigmoid, makes such a net trainable. "
        "ktk.diagnosis.repair trains the baseline with TrainingDiagnosis, "
        "applies the remedies of the root cause to rebuilt copies, retrains "
        "from the same seed, and keeps the change with the best validation "
        "loss among those that beat the run-to-run noise and remove the "
        "finding."
    )
    repair = getattr(ktk.diagnosis, "repair", None)
    build_model = broken_model
    if repair is None:
        keras.utils.set_random_seed(0)
        model = build_model()
        diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
        history = model.fit(
            x, y, validation_data=(xv, yv), epochs=cfg["repair_epochs"],
            batch_size=32, verbose=0,
            callbacks=[diag, Progress("baseline", cfg["repair_epochs"])],
        )
        keras.backend.clear_session()
        body = kit_html(diag)
        return [
            intro,
            unavailable("ktk.diagnosis.repair"),
            body if body is not None else _html.preformatted(diag.report()),
            curves_figure({"baseline": history.history},
                          "Baseline validation loss"),
        ], None
    report = repair(
        build_model, x, y, validation_data=(xv, yv),
        epochs=cfg["repair_epochs"], max_attempts=cfg["max_attempts"],
        seed=0, verbose=1, batch_size=32,
    )
    rows = [
        ["before", report.before.score,
         ", ".join(f.code for f in report.before.findings) or "-"],
        ["after", report.after.score,
         ", ".join(f.code for f in report.after.findings) or "-"],
    ]
    body = kit_html(report)
    parts = [
        intro,
        _html.table(["run", "val_loss", "findings"], rows),
        _html.paragraph(f"repaired: {report.repaired}"),
    ]
    if body is None:
        parts += [unavailable("RepairReport.to_html"),
                  _html.preformatted(report.report())]
    else:
        parts.append(body)
    keras.backend.clear_session()
    return parts, report


OPTIMIZERS = {
    "SGD(0.1)": lambda: ktk.optimizers.SGD(0.1),
    "Momentum(0.02, 0.9)": lambda: ktk.optimizers.Momentum(0.02, 0.9),
    "Adagrad(0.05)": lambda: ktk.optimizers.Adagrad(0.05),
    "RMSProp(0.002)": lambda: ktk.optimizers.RMSProp(0.002),
    "Adam(0.002)": lambda: ktk.optimizers.Adam(0.002),
}


def step_optimizers(cfg, scaled):
    (x, y), (xv, yv) = scaled
    runs, rows = {}, []
    for name, make in OPTIMIZERS.items():
        keras.utils.set_random_seed(0)
        model = compile_(mlp(), make())
        start = time.perf_counter()
        h = model.fit(
            x, y, validation_data=(xv, yv), epochs=cfg["opt_epochs"],
            batch_size=32, verbose=0,
            callbacks=[Progress(name, cfg["opt_epochs"])],
        ).history
        runs[name] = h
        rows.append([name, h["loss"][-1], h["val_loss"][-1],
                     h["val_accuracy"][-1],
                     round(time.perf_counter() - start, 1)])
        keras.backend.clear_session()
    return [
        _html.paragraph(
            "The same net from the same initial weights, trained with each "
            "of the course's optimizers (the kit's implementations of the "
            "slides' rules), batch size 32."
        ),
        curves_figure(runs, "Training loss per optimizer", key="loss"),
        _html.table(
            ["optimizer", "loss", "val_loss", "val_accuracy", "seconds"],
            rows,
        ),
    ], rows


DEFAULT_KNOBS = {"learning_rate": 1e-3, "dropout": 0.0, "l2": 0.0,
                 "batch_size": 32}


def search_model(hp):
    knobs = ktk.tuning.training_space(
        hp, optimizer="adam", learning_rate=(1e-4, 3e-2),
        batch_size=[32, 64, 128], dropout=(0.0, 0.5),
        l2=(1e-6, 1e-2), batch_norm=None, activation=None, depth=None,
        width=None,
    )
    model = mlp(dropout=knobs["dropout"], l2=knobs["l2"])
    return compile_(model, ktk.optimizers.Adam(knobs["learning_rate"]))


def step_search(cfg, scaled, out):
    (x, y), (xv, yv) = scaled
    stop = ktk.callbacks.EarlyStopping(patience=3, verbose=0)
    result = ktk.tuning.search(
        search_model, x, y, strategy="bayesian", objective="val_loss",
        max_trials=cfg["trials"], folds=cfg["folds"],
        epochs=cfg["search_epochs"], seed=0, verbose=1,
        directory=os.path.join(out, "search"), overwrite=True,
        callbacks=[stop],
    )
    intro = _html.paragraph(
        f"keras-tuner's Bayesian optimization (a Gaussian-process surrogate "
        f"picks the next point), {cfg['trials']} trials, each scored by "
        f"{cfg['folds']}-fold cross-validation on the training set, with "
        f"ktk.callbacks.EarlyStopping(patience=3) inside every fold. Knobs: "
        f"learning rate (log), dropout, L2 (log), batch size."
    )
    parts = [intro]
    body = kit_html(result)
    if body is None:
        parts.append(unavailable("SearchResult.to_html"))
        with tempfile.TemporaryDirectory() as folder:
            png = result.plot(os.path.join(folder, "search.png"))
            with open(png, "rb") as f:
                parts.append(_html.image(f.read(), "search: score per trial"))
        names = sorted({k for t in result.trials for k in t["hyperparameters"]})
        parts.append(_html.table(
            ["trial", *names, "score", "status"],
            [[t["trial_id"], *[t["hyperparameters"].get(n) for n in names],
              t["score"], t["status"]] for t in result.trials],
        ))
    else:
        parts.append(body)
    if result.best_score is None:
        parts.append(_html.paragraph(
            "no trial completed: step 6 uses the default knobs",
            cls="warning"))
    else:
        parts.append(_html.paragraph(
            f"best hyperparameters: {result.best_hyperparameters} "
            f"(mean cross-validated val_loss {result.best_score:.4g})"
        ))
    return parts, result


def step_test(cfg, scaled, test, result):
    (x, y), (xv, yv) = scaled
    hp = result.best_hyperparameters or DEFAULT_KNOBS
    keras.utils.set_random_seed(0)
    model = compile_(
        mlp(dropout=hp["dropout"], l2=hp["l2"]),
        ktk.optimizers.Adam(hp["learning_rate"]),
    )
    epochs = cfg["search_epochs"] * 2
    model.fit(
        x, y, validation_data=(xv, yv), epochs=epochs,
        batch_size=int(hp["batch_size"]), verbose=0,
        callbacks=[ktk.callbacks.EarlyStopping(patience=3, verbose=0),
                   Progress("final model", epochs)],
    )
    val = model.evaluate(xv, yv, verbose=0, return_dict=True)
    scores = test.evaluate(model)
    print(f"  test accuracy {scores['accuracy']:.4f} "
          f"(validation {val['accuracy']:.4f})")
    try:
        test.evaluate(model)
        refused = "the second evaluation was NOT refused"
    except ktk.data.HoldoutReusedError as error:
        refused = f"second evaluation refused: {error}"
    print(f"  {refused.split(':')[0]}")
    parts = [
        _html.paragraph(
            "The chosen hyperparameters, retrained on the training set with "
            "early stopping on validation, then evaluated on the test set "
            "once."
        ),
        _html.table(
            ["set", "loss", "accuracy"],
            [["validation", val["loss"], val["accuracy"]],
             ["test (once)", scores["loss"], scores["accuracy"]]],
        ),
        _html.paragraph(f"Final test accuracy: {scores['accuracy']:.4f}",
                        cls="info"),
        _html.paragraph(refused, cls="muted"),
    ]
    keras.backend.clear_session()
    return parts, scores


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a fast mode: tiny epochs and subsets")
    parser.add_argument("--out", default="demo_output",
                        help="output folder. Defaults to demo_output/")
    args = parser.parse_args(argv)
    cfg = settings(args.quick)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    sections = []

    def run(index, fn, *a):
        anchor, title = STEPS[index]
        print(f"\n== {title} ==", flush=True)
        t = time.perf_counter()
        parts, *rest = fn(*a)
        seconds = time.perf_counter() - t
        sections.append(_html.section(
            title, *parts,
            _html.paragraph(f"{seconds:.1f} s", cls="muted"), anchor=anchor,
        ))
        return rest

    anchor, title = STEPS[0]
    print(f"== {title} ==")
    raw, scaled, test, html = step_data(cfg)
    sections.append(_html.section(title, *html, anchor=anchor))
    run(1, step_scaling, cfg, raw, scaled)
    run(2, step_repair, cfg, scaled)
    run(3, step_optimizers, cfg, scaled)
    (result,) = run(4, step_search, cfg, scaled, args.out)
    (scores,) = run(5, step_test, cfg, scaled, test, result)
    contents = "<nav><ul>" + "".join(
        f'<li><a href="#{a}">{_html.escape(t)}</a></li>' for a, t in STEPS
    ) + "</ul></nav>"
    summary = _html.paragraph(
        f"keras_training_kit {ktk.__version__}, Keras {keras.__version__} "
        f"({keras.backend.backend()}), {'quick' if args.quick else 'full'} "
        f"mode, {time.perf_counter() - start:.0f} s. Final test accuracy "
        f"{scores['accuracy']:.4f}."
    )
    path = _html.write(
        os.path.join(args.out, "report.html"),
        _html.page("keras_training_kit: the course's training cycle",
                   summary, contents, *sections),
    )
    print(f"\nreport: {os.path.abspath(path)} "
          f"({time.perf_counter() - start:.0f} s)")
    return path


if __name__ == "__main__":
    main()
