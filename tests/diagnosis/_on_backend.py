"""Runs a test module's function on a given Keras backend.

`KERAS_BACKEND` is fixed at import, so another backend means another
process; the function's result travels back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras

ROOT = Path(__file__).resolve().parents[2]


def on(backend: str, module: str, name: str, timeout: int = 300):
    """`module.name()` (a module of `tests/diagnosis`) run on `backend`,
    in this process when it is this process's backend; its JSON result."""
    if backend == keras.backend.backend():
        mod = sys.modules.get(module) or __import__(module)
        return json.loads(json.dumps(getattr(mod, name)()))
    code = ("import json, sys; sys.path.insert(0, 'tests/diagnosis'); "
            f"import {module} as t; print(json.dumps(t.{name}()))")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
