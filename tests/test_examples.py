"""Every example runs alone in its quick mode and reproduces its claim.

Each example is a script (`python examples/NAME.py --quick --out DIR`) run
in a subprocess as a user runs it. It must exit 0, print its course claim
with the numbers and no TensorFlow C++ log line, write its figure(s) as
decodable, non-blank PNGs and `NAME.json` with the numbers; the claim is
then re-checked here from those numbers (and, for the 2-D surfaces, from
a NumPy transcription of the course's update rules).
"""

from __future__ import annotations

import io
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# one example per course topic (COURSE.md); regularization.py is the older
# all-in-one example with its own command line, tested in tests/layers
TOPICS = {
    "gradient_descent": "GD vs SGD vs mini-batch",
    "momentum": "momentum past a shallow minimum",
    "learning_rates": "learning rates too low / good / high / diverging",
    "adaptive": "Adagrad / RMSProp / Adam on an ill-conditioned surface",
    "lr_range_test": "LR range test and one-cycle",
    "feature_scaling": "feature scaling",
    "batch_norm": "BN makes a deep sigmoid net trainable",
    "early_stopping": "early stopping",
    "l1_l2": "L1 vs L2 weight histograms",
    "dropout_ensemble": "dropout as an ensemble",
    "search_strategies": "grid vs random vs Bayesian search",
    "repair": "diagnosis and repair of a broken run",
}
NOT_TOPICS = {"demo.py", "regularization.py", "_common.py", "_report.py"}
TF_LOG_LINES = re.compile(
    r"^(I|W|E)\d{4} |absl::InitializeLog|oneDNN custom operations|"
    r"cpu_feature_guard", re.M)


def test_one_example_per_topic():
    scripts = {p.name for p in EXAMPLES.glob("*.py")} - NOT_TOPICS
    assert scripts == {f"{name}.py" for name in TOPICS}


def _run(name: str, out: pathlib.Path) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env["KERAS_BACKEND"] = "tensorflow"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out",
         str(out)],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert not TF_LOG_LINES.search(output), output[:2000]
    assert "Course claim:" in proc.stdout
    record = json.loads((out / f"{name}.json").read_text())
    return record, proc.stdout


def _check_png(path: pathlib.Path) -> None:
    from PIL import Image

    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    assert len(data) < 300_000, (path, len(data))
    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img.convert("L"), float)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 5  # axes, curves and labels, not a blank canvas


def _momentum_reference(n):
    """The course's movement form on the example's surface, in NumPy."""
    sys.path.insert(0, str(EXAMPLES))
    import momentum  # the example's surface and gradient

    out = {}
    for name, lam in (("SGD(0.02)", 0.0), ("Momentum(0.02, 0.95)", 0.95)):
        p, v = np.array([-4.0, 1.5]), np.zeros(2)
        for _ in range(n):
            v = lam * v - 0.02 * momentum.grad(p)  # v <- lambda v - eta g
            p = p + v
        out[name] = p
    return out


CHECKS = {
    "gradient_descent": lambda n: (
        n["updates"]["SGD (batch 1)"] > n["updates"]["mini-batch 32"]
        > next(v for k, v in n["updates"].items() if k.startswith("GD"))
        and min(n["final_loss"]["SGD (batch 1)"],
                n["final_loss"]["mini-batch 32"])
        < next(v for k, v in n["final_loss"].items() if k.startswith("GD"))
    ),
    "momentum": lambda n: all(
        abs(ref[0] - n["final_x"][name]) < 1e-2
        for name, ref in _momentum_reference(n["steps"]).items()
    ) and n["final_x"]["SGD(0.02)"] < 0 < n["final_x"][
        "Momentum(0.02, 0.95)"],
    "learning_rates": lambda n: (
        n["final_loss"]["good"] == min(
            v for v in n["final_loss"].values() if math.isfinite(v))
        and n["final_loss"]["too low"] > 0.5 * n["first_loss"]["too low"]
    ),
    "adaptive": lambda n: max(
        v for k, v in n["distance_to_minimum"].items()
        if not k.startswith("SGD")) < min(
        v for k, v in n["distance_to_minimum"].items()
        if k.startswith("SGD")),
    "lr_range_test": lambda n: (
        n["diverged"] and 1e-4 < n["suggestion"] < n["lr_at_lowest_loss"]
        and n["smoothed_loss_at_suggestion"] < n["first_smoothed_loss"]
    ),
    "feature_scaling": lambda n: (
        all("unscaled_inputs" in c for k, c in n["findings"].items()
            if k.startswith("raw"))
        and min(v for k, v in n["final_val_loss"].items()
                if k.startswith("standardized"))
        < min(v for k, v in n["final_val_loss"].items()
              if k.startswith("raw"))
    ),
    "batch_norm": lambda n: (
        n["final_loss"]["sigmoid x8"] > n["final_loss"]["sigmoid x8 + BN"]
        and n["first_bn_mean_error"] < 1e-2
        and n["val_accuracy"]["population statistics"] > 0.5
    ),
    "early_stopping": lambda n: (
        n["best_epoch"] < n["stopped_at_epoch"] < n["epochs"]
        and n["restored_val_loss"] <= n["final_val_loss_without"]
    ),
    "l1_l2": lambda n: (
        n["fraction_near_zero"]["L1(1e-3)"] == max(
            n["fraction_near_zero"].values())
        and n["weight_rms"]["L2(1e-2)"] < n["weight_rms"]["none"]
    ),
    "dropout_ensemble": lambda n: (
        n["agreement_with_weight_scaling"]["30"]
        > n["agreement_with_weight_scaling"]["1"]
        and n["accuracy_weight_scaling"]
        > min(n["accuracy_single_subnetworks"])
    ),
    "search_strategies": lambda n: (
        n["distinct_learning_rates"]["grid"] ** 2 == n["trials"]
        and n["distinct_learning_rates"]["random"] == n["trials"]
        and all(v == n["trials"] for v in n["completed_trials"].values())
    ),
    "repair": lambda n: (
        "vanishing_gradients" in n["findings_before"]
        and "healthy" in n["findings_after"]
        and n["val_loss_after"] < n["val_loss_before"]
        and abs(n["val_loss_of_returned_model"] - n["val_loss_after"])
        < 1e-3 * max(1.0, n["val_loss_after"])
    ),
}


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_example_reproduces_its_claim(name, tmp_path):
    record, stdout = _run(name, tmp_path)
    assert record["figures"], "no figure written"
    for figure in record["figures"]:
        _check_png(tmp_path / figure)
        assert f"figure: {tmp_path / figure}" in stdout
    assert record["holds"], (record["claim"], record["numbers"])
    assert "Claim holds: yes" in stdout
    assert CHECKS[name](record["numbers"]), record["numbers"]
