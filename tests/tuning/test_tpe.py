"""TPEOracle: keras-tuner's oracle interface over Optuna's TPE sampler."""

import json
import math

import keras
import numpy as np
import pytest

import keras_tuner as kt
import optuna  # noqa: F401  (a declared dependency: missing fails)

from keras_training_kit import _compat  # noqa: E402
from keras_training_kit.tuning.tpe import TPEOracle  # noqa: E402

OBJ = kt.Objective("score", "min")


def _space():
    hp = kt.HyperParameters()
    hp.Float("x", -5.0, 5.0)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    return hp


def _f(values):
    # Optimum 0 at x = 1.3, lr = 1e-2 (a log-scale knob, like a real lr).
    return (values["x"] - 1.3) ** 2 + (math.log10(values["lr"]) + 2.0) ** 2


def _run(oracle, directory, name, objective=_f, n=None):
    _compat.kt_set_project_dir(oracle, str(directory), name)
    oracle.verbose = 0
    scores = []
    for _ in range(n or oracle.max_trials):
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        score = objective(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id, {"score": score})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        scores.append(score)
    return scores


def test_tpe_beats_random_search_at_equal_budget(tmp_path):
    budget, tpe_best, random_best = 30, [], []
    # keras-tuner's random oracle draws from seed, seed + 1, ...: spread
    # the seeds so that the five random searches are independent.
    for seed in (11, 223, 347, 461, 587):
        tpe = TPEOracle(OBJ, budget, seed=seed, hyperparameters=_space())
        rnd = kt.oracles.RandomSearchOracle(
            OBJ, budget, seed=seed, hyperparameters=_space()
        )
        tpe_best.append(min(_run(tpe, tmp_path, f"tpe{seed}")))
        random_best.append(min(_run(rnd, tmp_path, f"rnd{seed}")))
    # TPE models where good points are; random search does not learn.
    assert np.mean(tpe_best) < 0.5 * np.mean(random_best)
    assert np.median(tpe_best) < np.median(random_best)


def test_tpe_maximizes_when_the_objective_says_max(tmp_path):
    hp = kt.HyperParameters()
    hp.Float("x", -5.0, 5.0)
    oracle = TPEOracle(
        kt.Objective("score", "max"), 25, seed=3, hyperparameters=hp
    )
    scores = _run(oracle, tmp_path, "max", lambda v: -((v["x"] - 2.0) ** 2))
    # After the random start-up, proposals concentrate near the maximum.
    assert np.median(scores[-10:]) > np.median(scores[:5])
    assert max(scores) > -0.05
    assert oracle._study.direction.name == "MAXIMIZE"


def _all_types_space():
    hp = kt.HyperParameters()
    hp.Int("units", 16, 100, step=16)  # grid 16..96
    hp.Int("width", 8, 256, step=2, sampling="log")  # 8, 16, ..., 256
    hp.Int("depth", 1, 64, sampling="log")
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    hp.Float("lr", 1e-5, 1e-1, sampling="log")
    hp.Float("beta", 0.5, 0.999, sampling="reverse_log")
    hp.Choice("activation", ["relu", "tanh", "elu"])
    hp.Boolean("batch_norm")
    hp.Fixed("epochs", 3)
    hp.Choice("model", ["mlp", "cnn"])
    with hp.conditional_scope("model", ["cnn"]):
        hp.Int("filters", 4, 32, step=4)
    return hp


def test_every_keras_tuner_type_samples_inside_its_domain(tmp_path):
    space = _all_types_space()
    oracle = TPEOracle(OBJ, 24, seed=0, hyperparameters=space)
    seen = []

    def objective(values):
        seen.append(dict(values))
        return values["lr"] * 100 + values["dropout"]

    _run(oracle, tmp_path, "types", objective)
    assert len(seen) == 24
    for values in seen:
        assert values["units"] in range(16, 97, 16)
        assert values["width"] in [8 * 2**i for i in range(6)]
        assert isinstance(values["width"], int)
        assert 1 <= values["depth"] <= 64 and isinstance(values["depth"], int)
        assert min(abs(values["dropout"] - k / 10) for k in range(6)) < 1e-9
        assert 1e-5 <= values["lr"] <= 1e-1
        assert 0.5 <= values["beta"] <= 0.999
        assert values["activation"] in ("relu", "tanh", "elu")
        assert values["batch_norm"] in (True, False)
        assert values["epochs"] == 3
        # Conditional hyperparameters are sampled only when active.
        assert ("filters" in values) == (values["model"] == "cnn")
        if "filters" in values:
            assert values["filters"] in range(4, 33, 4)
    # Log sampling spreads over decades, as keras-tuner's own does: the
    # start-up (random) trials are log-uniform, so about half lie below
    # the geometric midpoint.
    lrs = np.array([v["lr"] for v in seen])
    assert lrs.min() < 1e-3 < lrs.max()
    # The mapping to Optuna's distributions is invertible on every value.
    import optuna

    from keras_training_kit.tuning.tpe import _Dimension

    for hp in space.space:
        if hp.name == "epochs":
            continue
        dim = _Dimension(hp, optuna)
        for values in seen:
            if hp.name in values:
                x = dim.to_optuna(values[hp.name])
                assert dim.distribution._contains(
                    dim.distribution.to_internal_repr(x)
                )
                assert dim.to_value(x) == pytest.approx(values[hp.name])


def test_same_seed_same_proposals_and_unique_values(tmp_path):
    def values_of(seed, name):
        oracle = TPEOracle(OBJ, 12, seed=seed, hyperparameters=_space())
        out = []
        _run(oracle, tmp_path, name, lambda v: out.append(v) or _f(v))
        return [tuple(sorted(v.items())) for v in out]

    a, b, c = values_of(7, "a"), values_of(7, "b"), values_of(8, "c")
    assert a == b
    assert a != c
    assert len(set(a)) == len(a)


def test_small_discrete_space_is_exhausted_without_repeats(tmp_path):
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Boolean("b")
    oracle = TPEOracle(OBJ, 20, seed=0, hyperparameters=hp, n_startup_trials=2)
    seen = []
    _run(oracle, tmp_path, "small", lambda v: seen.append(v) or v["a"])
    keys = {(v["a"], v["b"]) for v in seen}
    assert len(seen) == len(keys) == 6  # all 6 points once, then STOPPED


def test_state_is_json_and_reload_resumes_without_rerunning(tmp_path):
    oracle = TPEOracle(OBJ, 12, seed=5, hyperparameters=_space())
    first = _run(oracle, tmp_path, "resume", n=7)
    state = json.loads(json.dumps(oracle.get_state()))
    assert state["n_startup_trials"] == 3  # a quarter of 12
    ids_before = set(oracle.trials)

    # A new process: same directory, fresh oracle, keras-tuner's reload.
    again = TPEOracle(
        OBJ, 12, seed=5, hyperparameters=_space(), n_startup_trials=9
    )
    _compat.kt_set_project_dir(again, str(tmp_path), "resume")
    again.reload()
    assert again.n_startup_trials == 3  # restored from the saved state
    assert set(again.trials) == ids_before
    assert sorted(t.score for t in again.trials.values()) == sorted(first)

    ran = []
    rest = _run(again, tmp_path, "resume", lambda v: ran.append(v) or _f(v))
    assert len(rest) == 12 - 7  # the last finished trial is not re-run
    # The rebuilt study learned from all 7 finished trials plus the rest.
    complete = [
        t for t in again._study.trials if t.state.name == "COMPLETE"
    ]
    assert len(complete) == 12
    assert sorted(t.value for t in complete) == sorted(first + rest)
    hashes = [again._compute_values_hash(v) for v in ran]
    assert len(set(hashes)) == len(hashes)
    assert len(again.trials) == 12


def test_failed_and_nan_trials_do_not_break_the_search(tmp_path):
    oracle = TPEOracle(
        OBJ, 10, seed=0, hyperparameters=_space(),
        max_consecutive_failed_trials=10,
    )
    _compat.kt_set_project_dir(oracle, str(tmp_path), "fail")
    oracle.verbose = 0
    for i in range(10):
        trial = oracle.create_trial("tuner0")
        if i % 3 == 0:
            trial.status = "FAILED"
        else:
            score = float("nan") if i % 3 == 1 else _f(
                trial.hyperparameters.values
            )
            oracle.update_trial(trial.trial_id, {"score": score})
            trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert oracle.create_trial("tuner0").status == "STOPPED"
    states = [t.state.name for t in oracle._study.trials]
    assert states.count("COMPLETE") == 3  # i = 2, 5, 8
    assert states.count("FAIL") == 7


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_trials": 0}, "max_trials"),
        ({"n_startup_trials": -1}, "n_startup_trials"),
        ({"seed": -3}, "seed"),
        ({"max_retries_per_trial": 1.5}, "max_retries_per_trial"),
        ({"max_consecutive_failed_trials": 0}, "max_consecutive_failed"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TPEOracle(objective="val_loss", **kwargs)


def test_startup_trials_scale_with_the_budget():
    from keras_training_kit.tuning.tpe import startup_trials

    # A quarter of the budget, at least 2, at most Optuna's 10.
    assert [startup_trials(n) for n in (1, 8, 16, 40, 81, 400)] == [
        2, 2, 4, 10, 10, 10
    ]
    assert TPEOracle("val_loss", max_trials=16).n_startup_trials == 4
    assert TPEOracle("val_loss", n_startup_trials=0).n_startup_trials == 0


def _build(hp):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hp.Int("units", 8, 32, step=8), "relu"),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_tpe_drives_a_keras_tuner_search(tmp_path, digits):
    (x, y), (xv, yv) = digits
    oracle = TPEOracle("val_accuracy", max_trials=4, seed=1, n_startup_trials=2)
    tuner = kt.Tuner(
        oracle=oracle, hypermodel=_build, directory=str(tmp_path),
        project_name="kt",
    )
    tuner.search(
        x[:400], y[:400], validation_data=(xv, yv), epochs=1, verbose=0,
        batch_size=64,
    )
    trials = list(oracle.trials.values())
    assert len(trials) == 4
    assert all(t.status == "COMPLETED" for t in trials)
    assert oracle._study.direction.name == "MAXIMIZE"
    best = tuner.get_best_hyperparameters()[0].values
    assert best == max(trials, key=lambda t: t.score).hyperparameters.values


def test_tpe_through_ktk_search(tmp_path, digits):
    import keras_training_kit as ktk

    (x, y), (xv, yv) = digits
    result = ktk.tuning.search(
        _build, x[:400], y[:400], strategy="tpe", objective="val_loss",
        max_trials=3, validation_data=(xv, yv), epochs=1,
        directory=str(tmp_path), seed=1, verbose=0,
    )
    assert len(result.trials) == 3
    assert set(result.best_hyperparameters) >= {"units", "lr"}
    assert type(result.tuner.oracle).__name__ == "TPEOracle"
