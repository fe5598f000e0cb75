"""Kind name -> action class. Classes register themselves with @register; the
app's ready() imports apps.actions.kinds so the registry is full before use."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kinds.base import ActionKind

_REGISTRY: dict[str, type["ActionKind"]] = {}


def register(cls: type["ActionKind"]) -> type["ActionKind"]:
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise RuntimeError(f"action kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def get_kind(kind: str) -> type["ActionKind"]:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise LookupError(f"unknown action kind {kind!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_kinds() -> dict[str, type["ActionKind"]]:
    return dict(_REGISTRY)
