"""Canaries for every keras-tuner private the kit uses (`_compat.py`).

Each test exercises one accessor on real keras-tuner objects; when an
upgrade changes what it relies on, the failure names the installed
keras-tuner version.
"""

import inspect

import keras
import keras_tuner as kt
import pytest

from keras_training_kit import _compat

VERSION = f"keras-tuner {kt.__version__}"


def _space():
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Choice("b", ["x", "y"])
    return hp


def _oracle(cls, tmp_path, **kwargs):
    oracle = cls(objective=kt.Objective("score", "min"), max_trials=10, seed=1,
                 hyperparameters=_space(), **kwargs)
    _compat.kt_set_project_dir(oracle, str(tmp_path), "p")
    return oracle


def _finish(oracle, trial, score):
    oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_retry_queue(tmp_path):
    oracle = _oracle(kt.oracles.RandomSearchOracle, tmp_path)
    queue = _compat.kt_retry_queue(oracle)
    assert queue == [], VERSION
    trial = oracle.create_trial("t0")
    queue.append(trial.trial_id)  # the list keras-tuner reads
    oracle.ongoing_trials.clear()
    again = oracle.create_trial("t1")
    assert again.trial_id == trial.trial_id, f"retry queue moved in {VERSION}"
    _compat.kt_set_retry_queue(oracle, ["x"])
    assert _compat.kt_retry_queue(oracle) == ["x"], VERSION


def test_duplicate_random_values_and_collisions(tmp_path):
    oracle = _oracle(kt.oracles.RandomSearchOracle, tmp_path)
    trial = oracle.create_trial("t0")
    values = dict(trial.hyperparameters.values)
    assert _compat.kt_duplicate(oracle, values), VERSION
    assert not _compat.kt_duplicate(oracle, {"a": 99, "b": "z"}), VERSION
    assert _compat.kt_max_collisions(oracle) >= 1, VERSION
    seen = {tuple(sorted(values.items()))}
    for _ in range(5):  # 6 points in all: the space is then exhausted
        fresh = _compat.kt_random_values(oracle)
        assert fresh is not None, VERSION
        assert tuple(sorted(fresh.items())) not in seen, VERSION
        seen.add(tuple(sorted(fresh.items())))
        t = oracle.create_trial(f"w{len(seen)}")
        t.hyperparameters.values = fresh
        oracle.trials[t.trial_id].hyperparameters.values = fresh
        _finish(oracle, t, 1.0)
    # every point tried: keras-tuner's sampler reports exhaustion as None
    oracle2 = _oracle(kt.oracles.RandomSearchOracle, tmp_path / "b")
    for _ in range(6):
        t = oracle2.create_trial("t")
        if t.status != "RUNNING":
            break
        _finish(oracle2, t, 1.0)
    assert _compat.kt_random_values(oracle2) is None, VERSION


def test_grid_order_populate_next_and_compare(tmp_path):
    oracle = _oracle(kt.oracles.GridSearchOracle, tmp_path)
    ids = []
    for i in range(3):
        trial = oracle.create_trial(f"t{i}")
        ids.append(trial.trial_id)
        _finish(oracle, trial, float(i))
    order = _compat.kt_grid_order(oracle)
    assert sorted(order) == sorted(ids), VERSION
    assert isinstance(_compat.kt_grid_populate_next(oracle), list), VERSION
    _compat.kt_set_grid_order(oracle, list(reversed(order)))
    assert _compat.kt_grid_order(oracle) == list(reversed(order)), VERSION
    _compat.kt_set_grid_populate_next(oracle, ["q"])
    assert _compat.kt_grid_populate_next(oracle) == ["q"], VERSION
    a, b = (oracle.trials[i].hyperparameters.values for i in ids[:2])
    assert _compat.kt_grid_compare(oracle, a, b) < 0, VERSION  # grid order
    assert _compat.kt_grid_compare(oracle, a, a) == 0, VERSION


def _build(hp):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_tuner_try_build_and_checkpoint_names(tmp_path):
    tuner = kt.RandomSearch(_build, objective="loss", max_trials=1,
                            directory=str(tmp_path), project_name="p")
    model = _compat.kt_try_build(tuner, kt.HyperParameters())
    assert isinstance(model, keras.Model), VERSION
    ckpt = _compat.kt_checkpoint_fname(tuner, "00")
    config = _compat.kt_build_config_fname(tuner, "00")
    # `load_model` reads exactly these two files.
    model.save_weights(ckpt)
    with open(config, "w") as f:
        import json

        json.dump(model.get_build_config(), f)
    trial = kt.engine.trial.Trial(kt.HyperParameters(), trial_id="00")
    loaded = tuner.load_model(trial)
    assert loaded.count_params() == model.count_params(), VERSION


def test_chief_parts_and_start_server_patch(monkeypatch):
    protos, chief = _compat.kt_chief_parts()
    assert callable(protos.get_service_grpc), VERSION
    params = inspect.signature(chief.start_server).parameters
    assert list(params) == ["oracle"], f"start_server changed in {VERSION}"
    monkeypatch.setattr(chief, "start_server", chief.start_server)

    def serve(oracle):
        return oracle

    _compat.kt_patch_start_server(serve)
    assert chief.start_server is serve, VERSION
    # `BaseTuner.__init__` looks the function up on the module.
    from keras_tuner.src.engine import base_tuner

    assert "oracle_chief.start_server(" in inspect.getsource(base_tuner), (
        VERSION
    )


def test_missing_private_names_the_version():
    class Bare:
        pass

    with pytest.raises(_compat.CompatError, match=kt.__version__):
        _compat.kt_retry_queue(Bare())


def test_tuner_hooks_the_kit_overrides_exist():
    # Public hooks the kit overrides: a rename would silently disable them.
    sig = inspect.signature(kt.Tuner.on_epoch_end)
    assert list(sig.parameters)[:4] == ["self", "trial", "model", "epoch"], (
        VERSION
    )
    src = inspect.getsource(kt.Tuner.run_trial)
    assert "TunerCallback" in src, f"per-epoch hook gone in {VERSION}"
    assert "self._deepcopy_callbacks(" in src, VERSION


def test_hyperband_tuner_logic_the_kit_reuses():
    # `KitHyperbandTuner` skips `Hyperband.__init__` (it only builds a
    # plain oracle) and reuses `run_trial` and `_build_hypermodel`.
    init = inspect.getsource(kt.Hyperband.__init__)
    assert "HyperbandOracle(" in init and "super().__init__(" in init, (
        f"Hyperband.__init__ changed in {VERSION}"
    )
    assert "tuner/epochs" in inspect.getsource(kt.Hyperband.run_trial), (
        VERSION
    )
    build = inspect.getsource(kt.Hyperband._build_hypermodel)
    assert "load_weights" in build and "tuner/trial_id" in build, VERSION
