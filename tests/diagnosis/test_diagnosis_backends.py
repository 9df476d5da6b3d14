"""The diagnosis names the same codes on TensorFlow, JAX and PyTorch.

For each backend, in its own subprocess (`KERAS_BACKEND` is fixed at
import): the first held-out setting of every code of the labelled corpus
(`benchmarks/diagnosis_corpus`, labels justified by measurements that do
not use the kit), seed 0, through `benchmarks/diagnosis_accuracy.py
--quick`. The root cause must be the label; healthy runs stay silent.

Fast matrix: TensorFlow runs every code; JAX and PyTorch run the codes
whose evidence comes from the per-backend probe (gradients, activations,
inputs, non-finite weights) plus a healthy run, which is where backends
differ; the curve rules are backend-independent NumPy on logged losses.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "diagnosis_accuracy.py"
PROBE_CODES = (
    "healthy",
    "diverged",
    "vanishing_gradients",
    "dead_units",
    "saturated_units",
    "unscaled_inputs",
)


def _run(backend, tmp_path, codes=None):
    out = tmp_path / f"{backend}.json"
    cmd = [sys.executable, str(BENCH), "--backend", backend, "--split",
           "heldout", "--quick", "--json", str(out)]
    if codes:
        cmd += ["--codes", ",".join(codes)]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())["runs"]


@pytest.mark.parametrize("backend,codes", [
    ("tensorflow", None),
    ("jax", PROBE_CODES),
    ("torch", PROBE_CODES),
])
def test_root_causes_match_labels(backend, codes, tmp_path):
    runs = _run(backend, tmp_path, codes)
    assert runs and all(r["backend"] == backend for r in runs)
    if codes:
        assert {r["code"] for r in runs} == set(codes)
    wrong = [
        f"{r['setting']}: labelled {r['code']}, diagnosed {r['root']} "
        f"{r.get('problems')} {r.get('error', '')}"
        for r in runs if r["root"] != r["code"]
    ]
    assert not wrong, "\n".join(wrong)
