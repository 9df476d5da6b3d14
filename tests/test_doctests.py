"""Every `>>>` example of the package and of the guides runs as written.

The docstring examples of every module of `keras_training_kit` (found by
walking the package) and the `>>>` examples of `docs/*.md` are run with
`doctest`, so no example can rot. Examples see the usual names `ktk`,
`keras` and `np` (as a user's session would have them after the imports
the guides show); everything else they import themselves.
"""

from __future__ import annotations

import doctest
import importlib
import pathlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_training_kit as ktk

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# `python -m keras_training_kit` runs the command line when imported
SKIP = {"keras_training_kit.__main__"}


def _modules() -> list[str]:
    names = ["keras_training_kit"]
    for info in pkgutil.walk_packages(ktk.__path__, "keras_training_kit."):
        if info.name not in SKIP:
            names.append(info.name)
    return sorted(names)


def _globs() -> dict:
    return {"ktk": ktk, "keras": keras, "np": np}


def _run(tests, name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in tests:
        test.globs.update({k: v for k, v in _globs().items()
                           if k not in test.globs})
        keras.utils.set_random_seed(0)
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}:\n" + "".join(report)


def test_the_package_has_doctests():
    """Guards against a finder that silently finds nothing."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    count = sum(
        len(t.examples)
        for name in _modules()
        for t in finder.find(importlib.import_module(name))
    )
    assert count >= 50


@pytest.mark.parametrize("name", _modules())
def test_module_doctests(name):
    module = importlib.import_module(name)
    # the finder keeps only objects defined in `module`, not re-exports
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module) if t.examples]
    _run(tests, name)


def _guides() -> list[pathlib.Path]:
    return sorted(
        p for p in DOCS.glob("*.md") if ">>>" in p.read_text("utf-8")
    )


@pytest.mark.parametrize("path", _guides(), ids=lambda p: p.name)
def test_guide_doctests(path):
    text = path.read_text("utf-8")
    test = doctest.DocTestParser().get_doctest(
        text, _globs(), path.name, str(path), 0)
    _run([test], path.name)


SUBMODULES = ("optimizers", "schedules", "regularizers", "layers",
              "callbacks", "diagnosis", "data", "tuning")


@pytest.mark.parametrize("module", SUBMODULES)
def test_api_reference_covers_every_public_name(module):
    import re

    text = (DOCS / "api.md").read_text("utf-8")
    section = text.split(f"## `ktk.{module}`", 1)
    assert len(section) == 2, f"docs/api.md has no section ktk.{module}"
    body = section[1].split("\n## ", 1)[0]
    missing = [
        name for name in getattr(ktk, module).__all__
        if not re.search(rf"`{re.escape(name)}[`(]", body)
    ]
    assert not missing, f"docs/api.md, ktk.{module}: {missing}"


def test_docs_link_only_inside_the_repository():
    import re

    for page in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]:
        text = page.read_text("utf-8")
        base = page.parent
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            assert not re.match(r"[a-z]+:|//", target), (page.name, target)
            path = (base / target.split("#", 1)[0]).resolve()
            assert path.exists(), (page.name, target)
            assert ROOT in path.parents, (page.name, target)
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            size = (base / image).stat().st_size
            assert size < 100_000, (page.name, image, size)
