"""Multi-objective search: Pareto ranks, the front, and the HTML report."""

import base64
import html.parser
import io
import itertools

import keras
import keras_tuner as kt
import numpy as np
import optuna
import pytest

from keras_training_kit import _compat
from keras_training_kit.tuning import SearchResult, search
from keras_training_kit.tuning._pareto import ParetoRankMixin, pareto_ranks


def _dominates(a, b):
    return all(x <= y for x, y in zip(a, b)) and any(
        x < y for x, y in zip(a, b)
    )


def _ranks_by_definition(rows):
    """Peel fronts off one by one, straight from the definition."""
    left, ranks, rank = set(range(len(rows))), {}, 0
    while left:
        front = {
            i for i in left
            if not any(_dominates(rows[j], rows[i]) for j in left if j != i)
        }
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return [ranks[i] for i in range(len(rows))]


@pytest.mark.parametrize("seed", range(4))
def test_ranks_match_the_definition_and_optunas_front(seed):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 6, size=(40, 3)).astype(float)  # with ties
    ranks = pareto_ranks(rows)
    assert list(ranks) == _ranks_by_definition(rows.tolist())
    # Optuna's own non-dominated set (an independent implementation).
    study = optuna.create_study(directions=["minimize"] * 3)
    for i, row in enumerate(rows):
        study.add_trial(optuna.trial.create_trial(
            values=list(row), params={"i": i},
            distributions={"i": optuna.distributions.IntDistribution(0, 99)},
        ))
    front = sorted(t.params["i"] for t in study.best_trials)
    assert front == sorted(np.flatnonzero(ranks == 0).tolist())


def test_pareto_rank_mixin_orders_and_restores_scores(tmp_path):
    seen = {}

    class Probe(kt.Oracle):
        def populate_space(self, trial_id):
            seen.update({t: tr.score for t, tr in self.trials.items()
                         if tr.status == "COMPLETED"})
            return {"status": "RUNNING", "values": {}}

    class Oracle(ParetoRankMixin, Probe):
        pass

    objective = [kt.Objective("a", "min"), kt.Objective("b", "max")]
    oracle = Oracle(objective=objective, max_trials=10, seed=1)
    _compat.kt_set_project_dir(oracle, str(tmp_path), "p")
    points = [(1.0, 1.0), (2.0, 3.0), (3.0, 0.0), (0.5, 0.5), (2.0, 2.0)]
    for a, b in points:
        trial = oracle.create_trial("t")
        # keras-tuner logs its sum too (minimized minus maximized).
        oracle.update_trial(
            trial.trial_id, {"a": a, "b": b, "multi_objective": a - b}
        )
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    sums = {t: tr.score for t, tr in oracle.trials.items()}
    oracle.create_trial("t")
    # Inside populate_space the scores were the ranks (b is maximized).
    rows = [(a, -b) for a, b in points]
    expected = _ranks_by_definition(rows)
    assert [seen[t] for t in sorted(seen)] == expected
    assert {t: oracle.trials[t].score for t in sums} == sums  # restored
    best = oracle.get_best_trials(5)
    best_ranks = [expected[int(t.trial_id)] for t in best]
    assert best_ranks == sorted(best_ranks)


def _data(n=48, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 4).astype("float32")
    y = (x @ np.array([[1.0], [-1.0], [0.5], [0.2]])).astype("float32")
    return x, y


def _build(hp):
    units = hp.Choice("units", [1, 4, 16, 32])
    lr = hp.Choice("lr", [0.003, 0.03])
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(units, "relu"),
        keras.layers.Dense(1),
    ])
    model.compile(keras.optimizers.Adam(lr), "mse")
    return model


def _first_layer_units(model):
    return float(model.layers[0].units)


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_multi_objective_search_returns_the_true_front(strategy, tmp_path):
    x, y = _data()
    result = search(
        _build, x, y, strategy=strategy,
        objective=["val_loss", "params", _first_layer_units],
        max_trials=6, epochs=2, validation_split=0.25, seed=1,
        directory=tmp_path, verbose=0,
    )
    assert result.objectives == [
        ("val_loss", "min"), ("params", "min"), ("_first_layer_units", "min")
    ]
    done = [t for t in result.trials if t["status"] == "completed"]
    assert len(done) == 6
    for t in done:
        units = t["hyperparameters"]["units"]
        assert t["scores"]["params"] == 4 * units + units + units + 1
        assert t["scores"]["_first_layer_units"] == units
    rows = {t["trial_id"]: list(t["scores"].values()) for t in done}
    front = {t["trial_id"] for t in result.pareto_front}
    for a, b in itertools.permutations(rows, 2):
        if a in front:
            assert not _dominates(rows[b], rows[a])
    for b in set(rows) - front:
        assert any(_dominates(rows[a], rows[b]) for a in front)
    path = result.to_html(tmp_path / "report.html")
    _check_html(open(path, encoding="utf-8").read(), images=3)


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.urls, self.tables = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "table":
            self.tables += 1
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.urls.append(attrs[key])


def _check_html(text, images):
    page = _Page()
    page.feed(text)
    assert "<style>" in text and page.urls == []
    assert len(page.images) == images and page.tables >= 2
    from PIL import Image

    for src in page.images:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        png = base64.b64decode(data)
        Image.open(io.BytesIO(png)).verify()  # a whole, valid PNG


def test_single_objective_html_and_front(tmp_path):
    trials = [
        {"trial_id": "0", "hyperparameters": {"lr": 0.1, "act": "relu"},
         "score": 0.5, "status": "completed"},
        {"trial_id": "1", "hyperparameters": {"lr": 0.01, "act": "tanh"},
         "score": 0.3, "status": "completed"},
        {"trial_id": "2", "hyperparameters": {"lr": 0.001, "act": "relu"},
         "score": 0.1, "status": "pruned"},
        {"trial_id": "3", "hyperparameters": {"lr": 10.0, "act": "relu"},
         "score": float("nan"), "status": "diverged"},
    ]
    result = SearchResult(trials, "val_loss", "min")
    # A pruned trial never wins, even with a lower partial score.
    assert result.best_trial["trial_id"] == "1"
    assert result.pareto_front == [result.best_trial]
    text = open(result.to_html(tmp_path / "r.html"), encoding="utf-8").read()
    _check_html(text, images=2)
    assert "pruned" in text and "diverged" in text
