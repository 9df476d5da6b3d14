"""The nearest-neighbour yardstick for underfitting (`rules.check_bias`).

The measurement (`ktk.diagnosis._neighbours.compare`) against
scikit-learn's k-NN with leave-one-out (and its converged linear fit
against least squares by hand); the sign test against SciPy's binomial
test; the rule at and around its thresholds (read from
`rules.thresholds`); and end to end on each backend: a linear model on
two half-moons is `underfitting` (a twin with hidden layers fits the
same training rows clearly better, checked without the kit) while that
twin is silent.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import make_moons
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

import keras_training_kit as ktk
from _on_backend import on
from keras_training_kit.diagnosis import RunRecord, analyze, rules
from keras_training_kit.diagnosis._neighbours import compare
from keras_training_kit.diagnosis.rules import thresholds as T

# ------------------------------------------------------------ measurement


@pytest.mark.parametrize(("worse", "better"), [(9, 1), (30, 12), (5, 5),
                                               (0, 4), (250, 200)])
def test_sign_test_is_scipys_one_sided_binomial_test(worse, better):
    expected = stats.binomtest(worse, worse + better, 0.5,
                               alternative="greater").pvalue
    assert rules.sign_test_p(worse, better) == pytest.approx(expected,
                                                             rel=1e-9)


def _data(seed=0, n=150, d=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 20, d)  # unequal scales
    return rng, x


def _sklearn_loo(estimator, x, y):
    """scikit-learn's k-NN leave-one-out predictions on standardized x."""
    return cross_val_predict(estimator(T.NEIGHBOURS_K),
                             StandardScaler().fit_transform(x), y,
                             cv=LeaveOneOut())


def test_classification_errors_are_sklearn_knn_leave_one_out():
    rng, x = _data()
    y = (x[:, 0] / x[:, 0].std() + rng.normal(0, 0.7, len(x)) > 0).astype(
        "int64")
    proba = rng.uniform(size=len(x))
    out = compare(x, y, proba[:, None], "binary_crossentropy")
    knn = _sklearn_loo(KNeighborsClassifier, x, y)
    model_wrong = (proba > 0.5).astype("int64") != y
    knn_wrong = knn != y
    assert out["kind"] == "error rate" and out["rows"] == len(x)
    assert out["model"] == pytest.approx(model_wrong.mean())
    assert out["neighbours"] == pytest.approx(knn_wrong.mean())
    assert out["model_worse"] == int((model_wrong & ~knn_wrong).sum())
    assert out["neighbours_worse"] == int((~model_wrong & knn_wrong).sum())
    assert out["constant"] == pytest.approx(min(y.mean(), 1 - y.mean()))


def test_one_hot_sparse_and_logits_give_the_same_comparison():
    rng, x = _data(1)
    y = rng.integers(0, 3, len(x))
    logits = rng.normal(size=(len(x), 3))
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    sparse = compare(x, y, prob, "sparse_categorical_crossentropy")
    onehot = compare(x, np.eye(3)[y], logits, "categorical_crossentropy",
                     from_logits=True)
    assert sparse == onehot
    knn = _sklearn_loo(KNeighborsClassifier, x, y)
    assert sparse["neighbours"] == pytest.approx((knn != y).mean())
    binary_logits = compare(x, y % 2, logits[:, :1], "binary_crossentropy",
                            from_logits=True)
    assert binary_logits["model"] == pytest.approx(
        ((logits[:, 0] > 0) != (y % 2)).mean())


@pytest.mark.parametrize(("loss", "power"), [("mean_squared_error", 2),
                                             ("mean_absolute_error", 1)])
def test_regression_errors_are_sklearn_knn_leave_one_out(loss, power):
    rng, x = _data(2)
    y = np.sin(x[:, 0] / x[:, 0].std()) + rng.normal(0, 0.1, len(x))
    pred = 0.3 * x[:, 0] / x[:, 0].std()
    out = compare(x, y[:, None], pred[:, None], loss)
    knn = _sklearn_loo(KNeighborsRegressor, x, y)
    assert out["model"] == pytest.approx((np.abs(pred - y) ** power).mean())
    assert out["neighbours"] == pytest.approx(
        (np.abs(knn - y) ** power).mean())
    centre = y.mean() if power == 2 else np.median(y)
    assert out["constant"] == pytest.approx(
        (np.abs(y - centre) ** power).mean())


def test_a_linear_model_is_also_measured_at_convergence():
    rng, x = _data(5)
    y = x[:, 0] / x[:, 0].std() + 0.5 * x[:, 1] / x[:, 1].std()
    y = (y + rng.normal(0, 0.3, len(x)))[:, None]
    out = compare(x, y, np.zeros_like(y), "mean_squared_error", linear=True)
    xs = np.c_[StandardScaler().fit_transform(x), np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(xs, y, rcond=None)  # least squares by hand
    assert out["linear"] == pytest.approx(((xs @ coef - y) ** 2).mean())
    assert out["linear"] < out["neighbours"]  # a linear problem
    assert out["linear_better"] > out["linear_worse"]
    assert "linear" not in compare(x, y, np.zeros_like(y),
                                   "mean_squared_error")


def test_what_it_cannot_compare_is_none():
    rng, x = _data(3)
    y = rng.integers(0, 2, (len(x), 4))  # multi-label
    assert compare(x, y, rng.uniform(size=(len(x), 4)),
                   "binary_crossentropy") is None
    assert compare(x, y[:, 0], rng.uniform(size=(len(x), 1)),
                   "kl_divergence") is None
    assert compare(x[:10], y[:10, 0], rng.uniform(size=(10, 1)),
                   "binary_crossentropy") is None  # too few rows
    assert compare(np.ones((50, 3)), y[:50, 0], rng.uniform(size=(50, 1)),
                   "binary_crossentropy") is None  # constant features


def test_rows_with_nan_are_left_out():
    rng, x = _data(4)
    y = (x[:, 0] > 0).astype("int64")
    x[:7, 1] = np.nan
    out = compare(x, y, rng.uniform(size=(len(x), 1)),
                  "binary_crossentropy")
    assert out["rows"] == len(x) - 7


# ------------------------------------------------------------------- rule


FLAT = [0.7, 0.45, 0.36, 0.33, 0.325, 0.322, 0.323, 0.321, 0.322, 0.322,
        0.3215, 0.3222]
FALLING = list(0.9 - 0.02 * np.arange(12))  # a steady decline


def _yardstick(model=0.14, knn=0.03, constant=0.5, worse=30, better=5):
    return {"k": T.NEIGHBOURS_K, "rows": 400, "kind": "error rate",
            "model": model, "neighbours": knn, "constant": constant,
            "model_worse": worse, "neighbours_worse": better}


def test_a_plateau_that_k_nn_beats_is_underfitting_with_its_numbers():
    found = rules.check_bias(FLAT, neighbours=_yardstick(), weight_layers=1)
    assert [f.code for f in found] == ["underfitting"]
    text = str(found[0])
    assert text.startswith("[warning] underfitting: the loss levelled off")
    assert "error rate of 14.0%" in text and "reach 3.0%" in text
    assert "5 nearest neighbours" in text and "model_error=" not in text
    assert found[0].evidence["sign_test_p"] <= T.BIAS_P
    assert [r.name for r in found[0].remedies][0] == "bigger_model"


def test_only_a_linear_model_is_judged():
    """A net with hidden layers that k-NN beats is held back by something
    else (initialization, rate, regularization), not by its class."""
    nb = _yardstick()
    assert rules.check_bias(FLAT, neighbours=nb, weight_layers=1)
    for layers in (2, 3, None):
        assert not rules.check_bias(FLAT, neighbours=nb,
                                    weight_layers=layers)


def test_the_rows_must_differ_significantly():
    # Find the largest worse-count at n = 20 that is not significant.
    n = 20
    w = max(i for i in range(n + 1)
            if stats.binomtest(i, n, alternative="greater").pvalue > T.BIAS_P)
    assert not rules.check_bias(FLAT, neighbours=_yardstick(
        worse=w, better=n - w), weight_layers=1)
    assert rules.check_bias(FLAT, neighbours=_yardstick(
        worse=w + 1, better=n - w - 1), weight_layers=1)


def test_silent_when_a_converged_linear_model_fits():
    """The same class trained to convergence is as good as k-NN: this run
    is unfinished (e.g. too few epochs), not too simple."""
    unfinished = dict(_yardstick(), linear=0.02, linear_worse=2,
                      linear_better=9)
    assert not rules.check_bias(FLAT, neighbours=unfinished, weight_layers=1)
    too_simple = dict(_yardstick(), linear=0.12, linear_worse=28,
                      linear_better=4)
    found = rules.check_bias(FLAT, neighbours=too_simple, weight_layers=1)
    assert [f.code for f in found] == ["underfitting"]
    assert "trained to convergence 12.0%" in str(found[0])


def test_silent_when_the_model_fits_better_falls_still_or_overfits():
    assert not rules.check_bias(FLAT, neighbours=_yardstick(0.02, 0.03),
                                weight_layers=1)
    nb = _yardstick()
    assert not rules.check_bias(FALLING, neighbours=nb, weight_layers=1)
    assert not rules.check_bias(FLAT, neighbours=nb, weight_layers=1,
                                val_loss=[1.6 * v for v in FLAT])
    assert not rules.check_bias(FLAT, neighbours=None, weight_layers=1)
    assert not rules.check_bias(FLAT[:3], neighbours=nb, weight_layers=1)


def test_analyze_reads_the_record_and_round_trips():
    rec = RunRecord(epochs=list(range(len(FLAT))),
                    logs=[{"loss": v, "val_loss": v * 1.05} for v in FLAT],
                    baseline_loss=0.693, neighbours=_yardstick(),
                    layers=["dense"])
    assert [f.code for f in analyze(rec).problems] == ["underfitting"]
    back = RunRecord.from_dict(rec.to_dict())
    assert [f.code for f in analyze(back).problems] == ["underfitting"]
    rec.layers = ["dense", "dense_1"]
    assert analyze(rec).healthy
    rec.layers, rec.neighbours = ["dense"], None
    assert analyze(rec).healthy


# ------------------------------------------------------------- end to end


def moons_runs() -> dict:
    """A linear model and a one-hidden-layer twin on the same half-moons,
    each with `TrainingDiagnosis`; their problem codes and the training
    accuracy of each, measured here with `evaluate`."""
    x, y = make_moons(600, noise=0.1, random_state=0)
    x = x.astype("float32")
    y = y.astype("float32")
    out = {}
    for name, hidden in (("linear", ()), ("mlp", (32, 32))):
        keras.utils.set_random_seed(0)
        layers = [keras.Input((2,))]
        layers += [keras.layers.Dense(u, activation="relu") for u in hidden]
        layers += [keras.layers.Dense(1, activation="sigmoid")]
        model = keras.Sequential(layers)
        model.compile(keras.optimizers.Adam(0.02), "binary_crossentropy",
                      metrics=["accuracy"])
        diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
        model.fit(x[:450], y[:450], validation_data=(x[450:], y[450:]),
                  epochs=40, batch_size=32, callbacks=[diag], verbose=0)
        out[name] = {
            "codes": [f.code for f in diag.findings.problems],
            "text": diag.report(),
            "accuracy": model.evaluate(x[:450], y[:450], verbose=0)[1],
        }
    return out


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_linear_model_on_moons_underfits_and_its_twin_is_silent(backend):
    runs = on(backend, "test_bias", "moons_runs")
    # Independently of the kit: the twin fits the training rows better.
    assert runs["mlp"]["accuracy"] >= runs["linear"]["accuracy"] + 0.05
    assert runs["linear"]["codes"] == ["underfitting"], runs["linear"]
    assert "nearest neighbours" in runs["linear"]["text"]
    assert runs["mlp"]["codes"] == [], runs["mlp"]["text"]


# ------------------------------------------------- the quadratic yardstick


def test_quadratic_loo_is_sklearn_kernel_ridge_leave_one_out():
    from sklearn.kernel_ridge import KernelRidge

    from keras_training_kit.diagnosis._neighbours import quadratic_loo

    rng, x = _data(6, n=80, d=3)
    xs = StandardScaler().fit_transform(x)
    y = np.c_[xs[:, 0] * xs[:, 1], xs[:, 2] ** 2] + rng.normal(0, 0.1,
                                                                (80, 2))
    for lam in (0.05, 3.0):
        ours = quadratic_loo(xs, y, lams=[lam])
        ridge = KernelRidge(alpha=lam, kernel="poly", degree=2, coef0=1,
                            gamma=1 / xs.shape[1])
        theirs = cross_val_predict(ridge, xs, y, cv=LeaveOneOut())
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-8)
    # The default grid keeps the penalty with the smallest LOO error.
    chosen = quadratic_loo(xs, y)
    assert ((chosen - y) ** 2).mean() <= min(
        ((quadratic_loo(xs, y, lams=[lam]) - y) ** 2).mean()
        for lam in (0.05, 3.0)) + 1e-12


def _friedman(seed, n=400, noise=0.5):
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n, noise=noise, random_state=seed)
    return x, ((y - y.mean()) / y.std())[:, None]


def test_a_linear_model_on_friedman_loses_to_the_quadratic_not_to_knn():
    """Five of Friedman's ten features are noise: k-NN does no better
    than least squares, a quadratic model does (counted by hand)."""
    from sklearn.linear_model import LinearRegression

    from keras_training_kit.diagnosis._neighbours import quadratic_loo

    x, y = _friedman(0)
    fit = LinearRegression().fit(StandardScaler().fit_transform(x), y)
    pred = fit.predict(StandardScaler().fit_transform(x))
    out = compare(x, y, pred, "mean_squared_error", linear=True)
    quad = ((quadratic_loo(StandardScaler().fit_transform(x), y) - y) ** 2
            ).mean(axis=1)
    model = ((pred - y) ** 2).mean(axis=1)
    assert out["quadratic"] == pytest.approx(quad.mean())
    assert out["model_worse_quadratic"] == int((model > quad).sum())
    assert out["quadratic_worse"] == int((model < quad).sum())
    assert out["linear_worse_quadratic"] == out["model_worse_quadratic"]
    assert out["quadratic"] < 0.5 * out["linear"]
    assert out["neighbours"] > 0.8 * out["linear"]
    assert "quadratic" not in compare(x, y, pred, "mean_squared_error")


def _with_quadratic(p_quadratic_worse, n=200):
    nb = _yardstick(model=0.3, knn=0.35, worse=90, better=110)
    nb.update(kind="squared error", constant=1.0, quadratic=0.1,
              model_worse_quadratic=n - p_quadratic_worse,
              quadratic_worse=p_quadratic_worse)
    return nb


def test_the_quadratic_yardstick_is_tested_at_half_the_level():
    """Two yardsticks: each must reach BIAS_P / 2 (Bonferroni)."""
    n = 200

    def p(worse):
        return stats.binomtest(n - worse, n, alternative="greater").pvalue

    between = [w for w in range(n) if T.BIAS_P / 2 < p(w) <= T.BIAS_P]
    below = max(w for w in range(n) if p(w) <= T.BIAS_P / 2)
    assert between, "no count between the two levels at this n"
    assert not rules.check_bias(FLAT, neighbours=_with_quadratic(
        between[0]), weight_layers=1)
    found = rules.check_bias(FLAT, neighbours=_with_quadratic(below),
                             weight_layers=1)
    assert [f.code for f in found] == ["underfitting"]
    assert found[0].evidence["yardstick"] == "quadratic"
    assert "a quadratic model" in str(found[0])
    # A converged linear model that the quadratic does not beat: silent.
    unfinished = dict(_with_quadratic(below), linear=0.1, linear_worse=90,
                      linear_better=110, linear_worse_quadratic=90,
                      linear_better_quadratic=110)
    assert not rules.check_bias(FLAT, neighbours=unfinished,
                                weight_layers=1)


def friedman_runs() -> dict:
    """A linear Keras model on Friedman's problem, its one-hidden-layer
    twin, and a linear model on linear data, each with
    `TrainingDiagnosis`: codes, text and validation MSE (`evaluate`)."""
    from sklearn.datasets import make_regression

    out = {}
    xr, yr = make_regression(600, n_features=10, noise=10, random_state=0)
    cases = {"linear": (_friedman(1, 600), ()),
             "mlp": (_friedman(1, 600), (64,)),
             "linear_data": ((xr, ((yr - yr.mean()) / yr.std())[:, None]),
                             ())}
    for name, ((x, y), hidden) in cases.items():
        x = StandardScaler().fit_transform(x).astype("float32")
        y = y.astype("float32")
        keras.utils.set_random_seed(0)
        layers = [keras.Input((10,))]
        layers += [keras.layers.Dense(u, activation="relu") for u in hidden]
        model = keras.Sequential(layers + [keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(0.01), "mse")
        diag = ktk.callbacks.TrainingDiagnosis(verbose=0)
        model.fit(x[:400], y[:400], validation_data=(x[400:], y[400:]),
                  epochs=30, batch_size=32, callbacks=[diag], verbose=0)
        out[name] = {"codes": [f.code for f in diag.findings.problems],
                     "text": diag.report(),
                     "val_mse": model.evaluate(x[400:], y[400:], verbose=0)}
    return out


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_linear_model_on_friedman_underfits_its_twin_and_linear_data_not(
        backend):
    runs = on(backend, "test_bias", "friedman_runs")
    # Independently of the kit: a hidden layer fits held-out rows better.
    assert runs["mlp"]["val_mse"] <= 0.7 * runs["linear"]["val_mse"]
    assert runs["linear"]["codes"] == ["underfitting"], runs["linear"]
    assert "a quadratic model" in runs["linear"]["text"]
    assert runs["mlp"]["codes"] == [], runs["mlp"]["text"]
    assert runs["linear_data"]["codes"] == [], runs["linear_data"]["text"]
