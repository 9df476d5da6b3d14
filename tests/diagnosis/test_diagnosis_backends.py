"""The diagnosis names the same codes on TensorFlow, JAX and PyTorch.

For each backend, in its own subprocess (`KERAS_BACKEND` is fixed at
import): the first calibration setting of each code whose evidence comes
from the per-backend probe (gradients, activations, inputs) plus a healthy
run, from the labelled corpus (`benchmarks/diagnosis_corpus`, labels
justified by measurements that do not use the kit), seed 0, through
`benchmarks/diagnosis_accuracy.py --quick`. The root cause must be the
label; the healthy run stays silent. The curve rules are backend-free NumPy
on logged losses (tested in `test_diagnosis_rules.py`), and the accuracy
on the held-out half is what `benchmarks/diagnosis_accuracy.py` reports:
tests use the calibration half only.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "diagnosis_accuracy.py"
# `dead_units` has no calibration setting whose label the corpus supports
# (its probe is checked against NumPy on every backend in test_probe*.py).
PROBE_CODES = (
    "healthy",
    "vanishing_gradients",
    "saturated_units",
    "unscaled_inputs",
)


def _run(backend, tmp_path, codes=None):
    out = tmp_path / f"{backend}.json"
    cmd = [sys.executable, str(BENCH), "--backend", backend, "--split",
           "calibration", "--quick", "--json", str(out)]
    if codes:
        cmd += ["--codes", ",".join(codes)]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())["runs"]


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_root_causes_match_labels(backend, tmp_path):
    runs = _run(backend, tmp_path, PROBE_CODES)
    assert runs and all(r["backend"] == backend for r in runs)
    assert {r["code"] for r in runs} == set(PROBE_CODES)
    wrong = [
        f"{r['setting']}: labelled {r['code']}, diagnosed {r['root']} "
        f"{r.get('problems')} {r.get('error', '')}"
        for r in runs if r["root"] != r["code"]
    ]
    assert not wrong, "\n".join(wrong)
