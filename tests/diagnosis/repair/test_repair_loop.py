"""`ktk.diagnosis.repair`: the loop, the report, and what it must never do."""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_training_kit as ktk
from keras_training_kit.diagnosis.finding import Remedy
from keras_training_kit.diagnosis.repair import _remedies
from keras_training_kit.diagnosis.repair._context import (
    Context,
    objective_mode,
)
from keras_training_kit.diagnosis.repair._surgery import Unapplicable

L = keras.layers
SCE = "sparse_categorical_crossentropy"


def make_builder(lr, made=None):
    def build_model():
        model = keras.Sequential([
            keras.Input((64,)),
            L.Dense(64, activation="relu"),
            L.Dense(10, activation="softmax"),
        ])
        model.compile(keras.optimizers.Adam(lr), SCE, metrics=["accuracy"])
        if made is not None:
            made.append((model, [w.copy() for w in model.get_weights()]))
        return model

    return build_model


@pytest.fixture(scope="module")
def lr_repair(digits):
    (x, y), (xv, yv) = digits
    made = []
    keras.utils.set_random_seed(0)
    report = ktk.diagnosis.repair(
        make_builder(0.3, made), x[:600], y[:600],
        validation_data=(xv[:200], yv[:200]), epochs=6, max_attempts=3,
        verbose=0,
    )
    return report, made, (xv[:200], yv[:200])


def test_a_too_high_learning_rate_is_repaired(lr_repair):
    report, _, (xv, yv) = lr_repair
    assert "lr_too_high" in [f.code for f in report.before.problems]
    assert report.repaired
    kept = report.kept
    assert kept and kept[-1]["remedy"] == "lower_learning_rate"
    assert not report.after.problems
    # Independent: the returned model, evaluated here, has the reported
    # score, and its learning rate is the one the attempt chose.
    loss = report.model.evaluate(xv, yv, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(report.after.score, rel=1e-5)
    assert loss < report.before.score
    lr = float(report.model.optimizer.learning_rate)
    assert lr == pytest.approx(kept[-1]["params"]["learning_rate"], rel=1e-6)
    assert lr < 0.3
    assert report.noise is not None and report.noise >= 0
    for a in report.attempts:
        assert set(a) >= {"remedy", "params", "findings", "score", "kept"}


def test_the_users_function_and_models_are_unchanged(lr_repair):
    report, made, _ = lr_repair
    assert len(made) == 1  # the template, built once, never trained
    model, weights = made[0]
    assert report.model is not model
    assert all(r is not model for r in (report.before.model,
                                         report.after.model))
    assert float(model.optimizer.learning_rate) == pytest.approx(0.3)
    assert int(model.optimizer.iterations) == 0
    for w, saved in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(w, saved)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "Dense"
    ]


def test_report_text_html_and_keras_round_trip(lr_repair, tmp_path):
    report, _, (xv, _) = lr_repair
    text = report.report()
    assert "Attempt 1: lower_learning_rate" in text
    assert "Changes kept: lower_learning_rate" in text
    page = report.to_html(tmp_path / "repair.html")
    html = open(page, encoding="utf-8").read()
    assert html.count("data:image/png;base64,") == 1
    assert "http://" not in html and "https://" not in html
    assert "lower_learning_rate" in html and "kept" in html
    path = str(tmp_path / "repaired.keras")
    report.model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(xv, verbose=0),
                               report.model.predict(xv, verbose=0),
                               atol=1e-6)


def test_a_healthy_run_comes_back_untouched(digits):
    (x, y), val = digits
    report = ktk.diagnosis.repair(make_builder(1e-3), x, y,
                                  validation_data=val, epochs=12, verbose=0)
    assert report.before.problems == []
    assert report.attempts == [] and report.kept == []
    assert report.after is report.before
    assert report.noise is None
    assert not report.repaired
    assert "healthy already" in report.summary()


def test_remedies_compose(digits):
    (x, y), val = digits
    from sklearn.datasets import load_breast_cancer

    xb, yb = load_breast_cancer(return_X_y=True)
    xb = xb.astype("float32")

    def build():
        model = keras.Sequential([keras.Input((30,)),
                                  L.Dense(8, activation="relu"),
                                  L.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.SGD(0.5), SCE)
        return model

    ctx = Context(build, build(), xb, yb, (xb, yb, None), None, 2,
                  "val_loss", 0, {})
    recipe, _ = _remedies.apply(Remedy("standardize_inputs"),
                                _remedies.Recipe(), ctx)
    recipe, _ = _remedies.apply(Remedy("clip_gradients", {"clipnorm": 1.0}),
                                recipe, ctx)
    recipe, _ = _remedies.apply(Remedy("batch_normalization"), recipe, ctx)
    model = ctx.model(recipe, 0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Normalization", "Dense", "BatchNormalization",
                     "Activation", "Dense"]
    assert model.optimizer.global_clipnorm == 1.0
    assert float(model.optimizer.learning_rate) == pytest.approx(0.5)
    assert [name for name, _ in recipe.applied] == [
        "standardize_inputs", "clip_gradients", "batch_normalization"
    ]


def test_functional_models_are_rebuilt_with_the_same_initial_weights():
    def build():
        inp = keras.Input((5,), name="features")
        h = L.Dense(8, activation="sigmoid", name="hidden")(inp)
        out = L.Dense(1, name="out")(h)
        model = keras.Model(inp, out)
        model.compile(keras.optimizers.SGD(0.1), "mse")
        return model

    x = np.random.default_rng(0).normal(size=(64, 5)).astype("float32")
    y = x.sum(1).astype("float32")
    ctx = Context(build, build(), x, y, (x, y, None), None, 1,
                  "val_loss", 0, {})
    recipe, _ = _remedies.apply(Remedy("batch_normalization"),
                                _remedies.Recipe(), ctx)
    model = ctx.model(recipe, 0)
    names = [layer.name for layer in model.layers]
    assert names == ["features", "hidden", "hidden_batch_norm",
                     "hidden_activation", "out"]
    for name in ("hidden", "out"):
        for a, b in zip(model.get_layer(name).get_weights(),
                        ctx.template.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = L.Dense(32, activation="relu")
        self.out = L.Dense(10, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def build_subclassed(lr=0.3):
    model = Subclassed()
    model.compile(keras.optimizers.Adam(lr), SCE)
    model(np.zeros((1, 64), "float32"))
    return model


def test_a_subclassed_model_is_reported_never_a_crash(digits):
    (x, y), (xv, yv) = digits
    ctx = Context(build_subclassed, build_subclassed(), x, y,
                  (xv, yv, None), None, 1, "val_loss", 0, {})
    for name in ("batch_normalization", "dropout", "standardize_inputs"):
        with pytest.raises(Unapplicable,
                           match="cannot rebuild a subclassed model: apply "
                                 "by hand"):
            _remedies.apply(Remedy(name), _remedies.Recipe(), ctx)
    report = ktk.diagnosis.repair(build_subclassed, x[:400], y[:400],
                                  validation_data=(xv[:200], yv[:200]),
                                  epochs=4, max_attempts=1, verbose=0)
    assert report.before.problems
    assert sum(a["trained"] for a in report.attempts) == 1
    assert report.after.score <= report.before.score


def test_bad_input_fails_before_any_training(digits):
    (x, y), val = digits
    calls = []

    def counting():
        calls.append(1)
        return make_builder(1e-3)()

    def uncompiled():
        return keras.Sequential([keras.Input((64,)), L.Dense(10)])

    repair = ktk.diagnosis.repair
    with pytest.raises(ValueError, match="`max_attempts` must be an integer"):
        repair(counting, x, y, validation_data=val, max_attempts=0)
    with pytest.raises(ValueError, match="`validation_data` or "
                                         "`validation_split` is required"):
        repair(counting, x, y)
    with pytest.raises(ValueError, match="`validation_split`"):
        repair(counting, x, y, validation_split=1.5)
    with pytest.raises(ValueError, match="`build_model` must be a function"):
        repair("model", x, y, validation_data=val)
    with pytest.raises(ValueError, match="`epochs`"):
        repair(counting, x, y, validation_data=val, epochs=0)
    assert calls == []  # rejected before even building the model
    with pytest.raises(ValueError, match="must return a compiled model"):
        repair(uncompiled, x, y, validation_data=val)
    with pytest.raises(ValueError, match="must return a keras.Model"):
        repair(lambda: "not a model", x, y, validation_data=val)


def test_objective_direction():
    assert objective_mode("val_loss") == "min"
    assert objective_mode("val_mean_absolute_error") == "min"
    assert objective_mode("val_accuracy") == "max"
    assert objective_mode("val_auc") == "max"


_BACKEND_SCRIPT = textwrap.dedent("""
    import keras, numpy as np
    import keras_training_kit as ktk
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x, y = x.astype("float32"), y.astype("int32")

    def build():
        model = keras.Sequential([keras.Input((30,)),
                                  keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(1e-3),
                      "sparse_categorical_crossentropy")
        return model

    report = ktk.diagnosis.repair(build, x[:400], y[:400],
                                  validation_data=(x[400:], y[400:]),
                                  epochs=4, max_attempts=2, verbose=0)
    assert "unscaled_inputs" in [f.code for f in report.before.problems]
    first = report.attempts[0]
    assert first["remedy"] == "standardize_inputs" and first["kept"], first
    assert report.after.score < report.before.score
    report.model.save("m.keras")
    loaded = keras.saving.load_model("m.keras", safe_mode=True)
    assert type(loaded.layers[0]).__name__ == "Normalization"
    np.testing.assert_allclose(loaded.predict(x[400:], verbose=0),
                               report.model.predict(x[400:], verbose=0),
                               atol=1e-5)
    print("OK", keras.backend.backend())
""")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_core_loop_on_other_backends(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", _BACKEND_SCRIPT], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"OK {backend}" in done.stdout


def test_docstring_example_runs():
    import doctest

    from keras_training_kit.diagnosis.repair import _loop

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(_loop.repair, "repair",
                            globs={"keras": keras, "repair": _loop.repair}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 5


class _ScriptedContext:
    """A stand-in for `Context` whose runs have scripted scores: the loop's
    policy is tested without training (each recipe is the tuple of remedy
    names applied, `score` maps it to (score under seed, under seed + 1))."""

    objective, mode = "val_loss", "min"
    seed = 0

    def __init__(self, finding, scores):
        self.finding, self.scores, self.trained = finding, scores, []

    def badness(self, score):
        return score

    def train(self, recipe, seed=None):
        from keras_training_kit.diagnosis.repair.report import Run

        key = tuple(name for name, _ in recipe.applied)
        self.trained.append((key, seed))
        pair = self.scores[key]
        score = pair[1] if seed == self.seed + 1 else pair[0]
        findings = [self.finding] if key in self.sick else []
        return Run(findings, {"loss": [score]}, score, 0.0, None, recipe)


def _scripted_loop(monkeypatch, finding, scores, sick, max_attempts=6):
    from keras_training_kit.diagnosis.repair import _loop

    def apply(remedy, recipe, ctx):
        chosen = {"dose": sum(n == remedy.name for n, _ in recipe.applied)}
        return recipe.with_change(remedy.name, chosen), chosen

    monkeypatch.setattr(_remedies, "apply", apply)
    ctx = _ScriptedContext(finding, scores)
    ctx.sick = sick
    return _loop._run_loop(ctx, max_attempts, verbose=0), ctx


def test_the_best_passing_remedy_of_the_root_cause_is_kept(monkeypatch):
    from keras_training_kit.diagnosis.finding import Finding

    finding = Finding("vanishing_gradients", "warning", None, {})
    names = [r.name for r in finding.remedies]
    first, second, third = names  # BN, ReLU, He/Glorot
    scores = {(): (2.3, 2.3), (first,): (0.40, 0.41),
              (second,): (0.19, 0.20), (third,): (2.3, 2.3)}
    report, ctx = _scripted_loop(monkeypatch, finding, scores,
                                 sick={(), (third,)})
    # Every remedy had its turn although the first one already passed.
    assert [a["remedy"] for a in report.attempts] == names
    assert [a["remedy"] for a in report.kept] == [second]
    assert report.after.score == 0.19 and report.repaired
    assert "did better" in report.attempts[0]["note"]
    # The passing ones were confirmed under the second seed; the third
    # kept its finding and was not.
    assert ((first,), 1) in ctx.trained and ((second,), 1) in ctx.trained
    assert ((third,), 1) not in ctx.trained


def test_a_passing_graded_remedy_gets_one_stronger_dose(monkeypatch):
    from keras_training_kit.diagnosis.finding import Finding

    finding = Finding("lr_too_low", "warning", None, {})
    (raise_lr,) = [r.name for r in finding.remedies]
    once, twice, thrice = ((raise_lr,) * k for k in (1, 2, 3))
    scores = {(): (2.0, 2.0), once: (0.45, 0.46), twice: (0.27, 0.28),
              thrice: (0.1, 0.1)}
    report, ctx = _scripted_loop(monkeypatch, finding, scores, sick={()})
    # Dose 2 after dose 1 passed; no third dose after a second pass.
    assert [a["params"] for a in report.attempts] == [{"dose": 0},
                                                      {"dose": 1}]
    assert report.kept == [report.attempts[1]]
    assert report.after.recipe.applied == tuple(
        (raise_lr, {"dose": k}) for k in range(2))
    assert (thrice, None) not in ctx.trained
    # Out of attempts while comparing: the best so far is still kept.
    report, _ = _scripted_loop(monkeypatch, finding, scores, sick={()},
                               max_attempts=1)
    assert [a["params"] for a in report.kept] == [{"dose": 0}]


class _LearningRateContext(_ScriptedContext):
    """Scores keyed by the recipe's learning rate (rounded)."""

    def train(self, recipe, seed=None):
        from keras_training_kit.diagnosis.repair.report import Run

        key = None if recipe.learning_rate is None else round(
            recipe.learning_rate, 4)
        self.trained.append((key, seed))
        pair = self.scores[key]
        score = pair[1] if seed == self.seed + 1 else pair[0]
        findings = [self.finding] if key is None else []
        return Run(findings, {"loss": [score]}, score, 0.0, None, recipe)


def test_an_overshooting_stronger_dose_is_refined_once(monkeypatch):
    # digits_sgd_2ep's shape: the range test's rate trains, ten times it
    # overshoots, the log-midpoint of the two does best.
    from keras_training_kit.diagnosis.finding import Finding
    from keras_training_kit.diagnosis.repair import _loop

    def apply(remedy, recipe, ctx):
        lr = 0.125 if recipe.learning_rate is None else (
            recipe.learning_rate * 10)
        out = {"learning_rate": lr}
        return recipe.with_change(remedy.name, out, learning_rate=lr), out

    monkeypatch.setattr(_remedies, "apply", apply)
    finding = Finding("lr_too_low", "warning", None, {})
    mid = round(math.sqrt(0.125 * 1.25), 4)
    scores = {None: (2.37, 2.36), 0.125: (0.446, 0.449),
              1.25: (0.73, 0.37), mid: (0.168, 0.151)}
    ctx = _LearningRateContext(finding, scores)
    report = _loop._run_loop(ctx, 6, verbose=0)
    rates = [a["params"]["learning_rate"] for a in report.attempts]
    assert rates == pytest.approx([0.125, 1.25, mid], rel=1e-3)
    # The first dose is kept, then refined with the attempts left over.
    assert report.kept == [report.attempts[0], report.attempts[2]]
    assert report.after.recipe.learning_rate == pytest.approx(mid, rel=1e-3)
    assert report.after.score == 0.168
    assert "log-midpoint" in report.attempts[2]["params"]["how"]
    assert "refinement" in report.attempts[2]["note"]
    # Only once: a midpoint that fails too is not bisected again, and the
    # first passing dose is the one kept.
    scores[mid] = (0.9, 0.9)
    scores[round(math.sqrt(0.125 * mid), 4)] = (0.01, 0.01)
    report = _loop._run_loop(_LearningRateContext(finding, scores), 6,
                             verbose=0)
    assert len(report.attempts) == 3
    assert report.after.recipe.learning_rate == 0.125
    # No attempts left after the overshoot: no midpoint either.
    report = _loop._run_loop(_LearningRateContext(finding, scores), 2,
                             verbose=0)
    assert len(report.attempts) == 2 and report.after.score == 0.446


def test_between_is_the_geometric_mean_of_two_doses():
    from keras_training_kit.diagnosis.finding import Finding
    from keras_training_kit.diagnosis.repair import _doses
    from keras_training_kit.diagnosis.repair._surgery import Unapplicable

    finding = Finding("noisy_loss", "warning", None, {})
    batch = next(r for r in finding.remedies if r.name == "larger_batch")
    passed = _remedies.Recipe(batch_size=8)
    recipe, out = _doses.between(batch, passed, _remedies.Recipe(
        batch_size=128))
    assert recipe.batch_size == 32 == out["batch_size"]  # sqrt(8 * 128)
    assert recipe.applied[-1][0] == "larger_batch"
    with pytest.raises(Unapplicable):  # no integer strictly between
        _doses.between(batch, passed, _remedies.Recipe(batch_size=9))
    assert _doses.value(batch, recipe) == 32
    early = Finding("overfitting", "warning", None, {}).remedies[-1]
    assert _doses.value(early, recipe) is None  # not a graded remedy
    with pytest.raises(Unapplicable):
        _doses.between(early, passed, passed)


def test_an_output_fix_is_kept_when_the_loss_cannot_show_it(monkeypatch):
    # Softmax over one unit: Keras computes the loss from the logits, so
    # the fixed model's loss is the same; its predictions are not.
    from keras_training_kit.diagnosis.finding import Finding

    finding = Finding("loss_output_mismatch", "error", None, {})
    (fix,) = [r.name for r in finding.remedies]
    scores = {(): (0.1236, 0.1310), (fix,): (0.1236, 0.1310)}
    report, _ = _scripted_loop(monkeypatch, finding, scores, sick={()})
    assert [a["remedy"] for a in report.kept] == [fix]
    # A tuning remedy with the same scores is not kept.
    finding = Finding("lr_too_low", "warning", None, {})
    (raise_lr,) = [r.name for r in finding.remedies]
    scores = {(): (0.1236, 0.1310), (raise_lr,): (0.1236, 0.1310)}
    report, _ = _scripted_loop(monkeypatch, finding, scores, sick={()})
    assert report.kept == []
    # Worse than both of the current recipe's runs: not kept either.
    finding = Finding("loss_output_mismatch", "error", None, {})
    scores = {(): (0.1236, 0.1310), (fix,): (0.1311, 0.1310)}
    report, _ = _scripted_loop(monkeypatch, finding, scores, sick={()})
    assert report.kept == []


def test_mse_on_class_ids_is_repaired_by_a_cross_entropy_head(digits):
    # The loss changes, so the val_loss values before and after are in
    # other units: the repair judges (and reports) the validation error.
    (x, y), (xv, yv) = digits
    y, yv = np.asarray(y).astype("int64"), np.asarray(yv).astype("int64")

    def build_model():
        model = keras.Sequential([keras.Input((64,)),
                                  keras.layers.Dense(32, "relu"),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        return model

    report = ktk.diagnosis.repair(build_model, x[:600], y[:600],
                                  validation_data=(xv[:300], yv[:300]),
                                  epochs=8, max_attempts=2, verbose=0)
    assert report.before.codes == ["loss_output_mismatch"]
    assert [a["remedy"] for a in report.kept] == ["fix_output_layer"]
    assert report.loss_changed and report.by_error and report.repaired
    assert "validation error" in report.summary()
    assert "validation error rate" in report.kept[0]["note"]
    # Independent: accuracy of the repaired model from its predictions
    # against the rounded regression output of the original.
    p = report.model.predict(xv[:300], verbose=0)
    q = report.before.model.predict(xv[:300], verbose=0)[:, 0]
    assert (p.argmax(1) == yv[:300]).mean() > (
        np.clip(np.rint(q), 0, 9) == yv[:300]).mean()
