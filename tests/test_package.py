"""The package itself: light import, the API contract, the command line."""

import ast
import subprocess
import sys
from pathlib import Path

import keras_training_kit as ktk

PACKAGE = Path(ktk.__file__).parent
HEAVY = ("keras_tuner", "matplotlib", "optuna", "torch")


def test_import_adds_no_heavy_module():
    """`import keras_training_kit` loads nothing beyond Keras' own imports.

    Keras 3.15 itself imports matplotlib, so the check is on what the kit
    adds after `import keras`.
    """
    code = (
        "import sys, keras; before = set(sys.modules)\n"
        "import keras_training_kit\n"
        f"print(sorted(m for m in set(sys.modules) - before "
        f"if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        check=True,
    ).stdout.strip().splitlines()[-1]
    assert out == "[]", out


def test_import_works_without_docstrings():
    """`python -OO` strips docstrings: the kit must not depend on them."""
    result = subprocess.run(
        [sys.executable, "-OO", "-c",
         "import keras_training_kit as ktk; "
         "assert ktk.optimizers.Adam.__doc__ is None; "
         "print(ktk.optimizers.Adam(0.1).learning_rate)"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_declared_test_dependencies_import():
    """Declared (test) dependencies are installed: missing ones fail here
    instead of turning tests into skips."""
    import importlib

    for name in ("keras_tuner", "optuna", "torch", "jax", "sklearn"):
        importlib.import_module(name)


def test_no_module_imports_matplotlib_at_top_level():
    """matplotlib is imported inside the functions that plot."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("matplotlib", "optuna", "torch")
                   for n in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders


def test_api_contract_names_are_present():
    checker = PACKAGE.parent.parent / "shared" / "tools" / "check_api.py"
    if not checker.exists():  # the contract checker lives beside the repo
        import pytest

        pytest.skip("shared/tools/check_api.py not found")
    result = subprocess.run(
        [sys.executable, str(checker)], capture_output=True, text=True,
        cwd=PACKAGE.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_command_line_lists_its_commands():
    result = subprocess.run(
        [sys.executable, "-m", "keras_training_kit", "--help"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0
    assert "diagnose" in result.stdout and "tune" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "keras_training_kit", "frobnicate"],
        capture_output=True, text=True,
    )
    assert bad.returncode == 2


def test_every_public_class_is_registered_and_serializable():
    import keras

    from keras_training_kit._registry import REGISTRY

    names = {e for kind in REGISTRY.values() for e in kind}
    for expected in ("SGD", "Momentum", "Adagrad", "RMSProp", "Adam"):
        assert expected in names
        cls = getattr(ktk.optimizers, expected)
        key = f"keras_training_kit>{expected}"
        assert keras.saving.get_registered_object(key) is cls
