"""The backend matrix: the kit's suites on JAX and PyTorch, in `make test`.

Keras fixes its backend at import, so each backend runs in its own
subprocess (`KERAS_BACKEND=jax`, `KERAS_BACKEND=torch`); the TensorFlow leg
is the rest of `make test` itself. What runs where:

| suite                                   | TF | JAX | torch |
|-----------------------------------------|----|-----|-------|
| `tests/test_conformance.py` (registry:  | x  |  x  |   x   |
|  config/JSON/`.keras` round trips, fit  |    |     |       |
|  eager and `jit_compile=True`, mixed    |    |     |       |
|  precision, base options, exact resume) |    |     |       |
| `tf.distribute` probe (in conformance)  | x  |  -  |   -   |
| `tests/optimizers/test_trajectories.py` | x  |  x  |   x   |
|  (NumPy references, step by step)       |    |     |       |
| `tests/optimizers/test_zero_epsilon.py` | x  |  x  |   x   |
|  (ε = 0: no 0/0 on any update path)     |    |     |       |
| `tests/optimizers/test_paths_and_...`   | x  |  -  |   -   |
|  (TF graph/XLA/compiled update paths)   |    |     |       |
| `tests/backends/_jax_checks.py` (one    | -  |  x  |   -   |
|  trace over 20 steps, no host callback) |    |     |       |
| `tests/backends/_torch_checks.py`       | -  |  -  |   x   |
|  (`torch._foreach_*` path vs NumPy,     |    |     |       |
|  plain path, `torch.optim`)             |    |     |       |
| `tests/test_compat.py` (canaries)       | x  |  -  |   x   |
| `tests/schedules/` (uses `tf.function`) | x  |  -  |   -   |

`tf.distribute.MirroredStrategy` and the XLA-compiled non-XLA update path
are TensorFlow-only by nature (see `_compiled_update`); everything else is
the same code on all three backends. Each leg is one pytest process with
`-x`, run by one test here, so that `pytest -n 2` runs the two legs on
different workers; each is bounded by `LEG_TIMEOUT`.

The fast matrix (`make test`): on torch, `jit_compile=True` means
`torch.compile` (an inductor C++ build, ~7-10 s per model on 2 cores), so
there it runs for `SGD` and `Adam` (`test_optimizer_fit[...-xla]`: the
plain and the richest update through the same base class), and the other
`jit_compile=True` conformance tests (the other optimizers, layers,
regularizers, schedules: already compiled by XLA on TF and by jit on JAX)
are deselected.
`KTK_FULL_MATRIX=1` runs all of them on torch too (all pass; ~12 min on a
loaded 2-core machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
LEG_TIMEOUT = 600

LEGS = {
    "jax": [
        "tests/test_conformance.py",
        "tests/optimizers/test_trajectories.py",
        "tests/optimizers/test_zero_epsilon.py",
        "tests/backends/_jax_checks.py",
    ],
    "torch": [
        "tests/test_conformance.py",
        "tests/optimizers/test_trajectories.py",
        "tests/optimizers/test_zero_epsilon.py",
        "tests/backends/_torch_checks.py",
        "tests/test_compat.py",
    ],
}


# Deselected on torch unless KTK_FULL_MATRIX=1 (see the module docstring).
TORCH_FAST = ("not (xla and (layer or regularizer)) and not schedule_xla "
              "and not schedule_in_fit and not (optimizer_fit and xla and "
              "(Momentum or RMSProp or Adagrad))")


@pytest.mark.parametrize("backend", list(LEGS))
def test_backend_leg(backend):
    env = {**os.environ, "KERAS_BACKEND": backend,
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [sys.executable, "-m", "pytest", "-q", "-x",
               "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
               *LEGS[backend]]
    if backend == "torch" and os.environ.get("KTK_FULL_MATRIX") != "1":
        command += ["-k", TORCH_FAST]
    result = subprocess.run(command, env=env, capture_output=True,
                            text=True, timeout=LEG_TIMEOUT, cwd=ROOT)
    tail = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"{backend} leg failed:\n{tail}"
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, tail
    # Nothing may silently not run: the only skips allowed are the tests
    # that name another backend (counted and checked here).
    assert "skipped" not in summary or backend_skips_only(result.stdout), tail


def backend_skips_only(stdout):
    """True when every skip reason is 'run with KERAS_BACKEND=...' or a
    test marked for another backend."""
    reasons = [line for line in stdout.splitlines() if "SKIPPED" in line]
    return all("KERAS_BACKEND" in line or "backend" in line
               for line in reasons)
