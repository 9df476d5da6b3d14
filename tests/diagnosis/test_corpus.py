"""The diagnosis corpus (`benchmarks/diagnosis_corpus`) and its labels.

Checks that the corpus is well formed (every problem code in >= 4
settings, >= 15 healthy settings, twins that are healthy and share the
task, a split fixed by rule), that `labels.json` is current (every setting
and seed, same fit arguments) and that its stored, kit-independent
measurements support every label. It never re-runs the corpus: two short
runs check that `run()` works and reproduces the stored measurements.
"""

from __future__ import annotations

import collections
import json
import math
import os
import sys

import numpy as np
import pytest

import keras_training_kit as ktk

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import diagnosis_corpus as dc  # noqa: E402
from diagnosis_corpus import label  # noqa: E402

SEEDS = ("0", "1", "2")
PROBLEMS = tuple(c for c in ktk.diagnosis.CODES if c != "healthy")


@pytest.fixture(scope="module")
def labels():
    with open(label.LABELS) as fh:
        return json.load(fh)["settings"]


def test_settings_are_well_formed():
    names = [s.name for s in dc.settings()]
    assert len(names) == len(set(names))
    for s in dc.settings():
        assert s.code in ktk.diagnosis.CODES, s.name
        assert s.name.startswith(s.code + "/"), s.name
        assert s.split in ("calibration", "heldout", "fresh")
        assert isinstance(s.tags, tuple) and s.tags
        assert {"epochs", "batch_size"} <= set(s.fit_kwargs), s.name
        if s.code == "healthy":
            assert s.twin is None
        else:
            twin = dc.get(s.twin)
            assert twin.code == "healthy", s.name
            assert twin.tags[0] == s.tags[0], (s.name, twin.name)  # same task
        assert dc.get(s.name) is s or dc.get(s.name) == s


def test_every_code_has_four_settings_and_fifteen_healthy():
    counts = collections.Counter(s.code for s in dc.settings())
    assert counts["healthy"] >= 15
    for code in PROBLEMS:
        assert counts[code] >= 4, (code, counts[code])


def test_the_corpus_varies_data_architecture_and_optimizer():
    tags = collections.Counter(t for s in dc.settings() for t in s.tags)
    for t in ("digits", "cancer", "moons", "circles", "friedman",
              "sequence", "mlp", "conv", "lstm", "gru", "bn", "dropout",
              "sgd", "momentum", "adam", "rmsprop"):
        assert tags[t] >= 1, t
    healthy = {t for s in dc.settings() if s.code == "healthy"
               for t in s.tags}
    for hard in ("momentum", "noisy_targets", "clr", "one_cycle", "bn",
                 "dropout", "short", "long", "imbalance", "early_stopping",
                 "binary", "multilabel", "logits"):
        assert hard in healthy, hard
    batch8 = [s for s in dc.settings()
              if s.code == "healthy" and s.fit_kwargs["batch_size"] <= 8]
    assert batch8


def test_split_is_fixed_by_alternation_within_each_code():
    seen = collections.Counter()
    fresh = {name for name, *_ in dc.fresh.specs()}
    for s in dc.settings():
        if s.name in fresh:  # written after the held-out half's review
            assert s.split == "fresh", s.name
            continue
        expected = ("calibration", "heldout")[seen[s.code] % 2]
        seen[s.code] += 1
        assert s.split == expected, s.name
    for code in (*PROBLEMS, "healthy"):
        splits = collections.Counter(
            s.split for s in dc.settings() if s.code == code
        )
        assert splits["calibration"] >= 2 and splits["heldout"] >= 2, code


def test_labels_are_current(labels):
    assert set(labels) == {s.name for s in dc.settings()}
    for s in dc.settings():
        stored = labels[s.name]
        assert stored["code"] == s.code and stored["twin"] == s.twin
        assert stored["split"] == s.split
        assert stored["fit"] == label.signature(s), s.name
        assert set(stored["runs"]) >= set(SEEDS), s.name


def test_support_flags_follow_the_measurements(labels):
    """Each stored `supported` flag is what the criteria give on the stored
    measurements; only supported settings are scored by
    `benchmarks/diagnosis_accuracy.py`, and every code keeps at least one.
    (Unsupported settings are listed in `labels.json`, to be fixed, never
    relabelled to match the kit.)"""
    supported = collections.Counter()
    for s in dc.settings():
        runs = [labels[s.name]["runs"][k] for k in SEEDS]
        twin = None if s.twin is None else [
            labels[s.twin]["runs"][k] for k in SEEDS
        ]
        crit = label.criteria(s, runs, twin)
        fails = {k: v[1] for k, v in crit.items() if not v[0]}
        assert labels[s.name]["supported"] == (not fails), s.name
        supported[s.code] += not fails
    codes = {s.code for s in dc.settings()}
    assert all(supported[c] >= 1 for c in codes), supported


def _seeds(labels, name, key):
    return [labels[name]["runs"][k][key] for k in SEEDS]


def test_direct_evidence_per_code(labels):
    """A second, literal reading of the stored numbers, code by code, for
    every setting whose label the criteria support."""
    for s in dc.settings():
        if not labels[s.name]["supported"]:
            continue
        if s.code == "healthy":
            errs = _seeds(labels, s.name, "val_err")
            chance = _seeds(labels, s.name, "chance_err")
            assert all(e < c for e, c in zip(errs, chance)), s.name
            assert all(e is None for e in _seeds(labels, s.name,
                                                  "nan_epoch"))
            continue
        if s.code == "diverged":
            for e, n in zip(_seeds(labels, s.name, "nan_epoch"),
                            _seeds(labels, s.name, "epochs")):
                assert isinstance(e, int) and 1 <= e <= n, s.name
            continue
        key = {"underfitting": "train_err",
               "overfitting": "val_loss_end"}.get(s.code, "val_err")
        mine, twin = _seeds(labels, s.name, key), _seeds(labels, s.twin, key)
        assert np.mean(twin) < np.mean(mine), (s.name, mine, twin)
        if s.code == "vanishing_gradients":
            assert np.all(np.less(_seeds(labels, s.name, "grad_ratio_init"),
                                  _seeds(labels, s.twin, "grad_ratio_init")))
        if s.code == "exploding_gradients":
            assert np.all(np.greater(
                _seeds(labels, s.name, "grad_norm_init"),
                _seeds(labels, s.twin, "grad_norm_init"),
            ))
        if s.code == "unscaled_targets":
            assert min(_seeds(labels, s.name, "target_max_abs")) >= 1e6


def test_user_reports_are_ported():
    names = {s.name for s in dc.settings() if "user_report" in s.tags}
    codes = collections.Counter(dc.get(n).code for n in names)
    assert codes["lr_too_low"] >= 2  # slow steady decline; 2-epoch run
    for code in ("lr_too_high", "unscaled_targets", "diverged", "healthy"):
        assert codes[code] >= 1, code
    assert "healthy/digits_half_dead" in names
    two = [dc.get(n) for n in names if dc.get(n).code == "lr_too_low"]
    assert any(s.fit_kwargs["epochs"] == 2 for s in two)


@pytest.mark.parametrize(
    "name", ["healthy/digits_mlp_sgd_2ep", "lr_too_low/digits_sgd_2ep"]
)
def test_run_reproduces_the_stored_measurements(labels, name):
    out = dc.run(dc.get(name), seed=0)
    loss = out["history"]["loss"]
    assert len(loss) == dc.get(name).fit_kwargs["epochs"]
    assert all(math.isfinite(v) for v in loss)
    stored = labels[name]["runs"]["0"]["loss"]
    np.testing.assert_allclose(loss, stored, rtol=1e-3)
    assert out["seconds"] > 0 and out["backend"] == "tensorflow"
