"""One registry of every public kit object.

`register` makes a class Keras-serializable under the package name
``keras_training_kit`` (so `.keras` files load with `safe_mode=True` and no
`custom_objects`) and enrolls it, with a small example configuration, in the
shared conformance tests (`tests/test_conformance.py`): serialization round
trip, `.keras` round trip, `fit`, `jit_compile=True`, mixed precision.
Adding an object to the registry is all it takes to have it tested.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import keras

PACKAGE = "keras_training_kit"
KINDS = ("optimizer", "schedule", "regularizer", "layer", "callback")


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered public object and how the conformance tests build it.

    Attributes:
        kind: one of `KINDS`.
        cls: the class.
        example: constructor keyword arguments for a small, valid instance.
        info: extra hints for the conformance tests, e.g. `input_shape`
            for layers or `skip` (a tuple of test names that cannot apply,
            each with a reason in the source).
    """

    kind: str
    cls: type
    example: dict
    info: dict

    @property
    def name(self) -> str:
        return self.cls.__name__

    def make(self, **overrides: Any) -> Any:
        return self.cls(**{**self.example, **overrides})


REGISTRY: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}


def register(
    kind: str, example: dict | None = None, **info: Any
) -> Callable[[type], type]:
    """Class decorator: Keras-serializable and enrolled in the registry."""
    if kind not in KINDS:
        raise ValueError(
            f"`kind` must be one of {KINDS}. Received: kind={kind!r}"
        )

    def decorate(cls: type) -> type:
        cls = keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        entry = Entry(kind, cls, dict(example or {}), info)
        REGISTRY[kind][cls.__name__] = entry
        return cls

    return decorate


def entries(kind: str) -> list[Entry]:
    """The registered entries of one kind, in registration order."""
    return list(REGISTRY[kind].values())
