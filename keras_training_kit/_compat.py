"""The one home of other libraries' private APIs.

Every access the kit makes to a private name of Keras, TensorFlow or
keras-tuner goes through a function here, and each function has a canary
test (`tests/test_compat*.py`) that fails with a message naming the
installed version when an upgrade removes or changes what it relies on.
Everything else in the kit uses public API only.
"""

from __future__ import annotations

from typing import Any

import keras


class CompatError(RuntimeError):
    """A private API the kit relies on is missing in this installed version."""


def versions() -> str:
    """The installed versions of the libraries whose privates are used."""
    parts = [f"keras {keras.__version__}"]
    for name in ("tensorflow", "keras_tuner"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        parts.append(f"{name} {getattr(module, '__version__', '?')}")
    return ", ".join(parts)


def broken(what: str, error: Exception | None = None) -> CompatError:
    """The error raised when a private API is missing: names the versions."""
    why = f" ({type(error).__name__}: {error})" if error else ""
    return CompatError(
        f"keras_training_kit relies on {what}, which this installation "
        f"lacks{why}; installed: {versions()}. Please report it."
    )


# ---------------------------------------------------------------------------
# Keras layers and callbacks (section owned by the backends work).


# ---------------------------------------------------------------------------
# Keras fit internals used by the diagnosis (section owned by diagnosis).


# ---------------------------------------------------------------------------
# TensorFlow (section owned by the backends work).


# ---------------------------------------------------------------------------
# keras-tuner (section owned by the tuning work).
