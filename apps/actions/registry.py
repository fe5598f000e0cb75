"""Kind name -> action class. Classes register themselves with @register; the
app's ready() imports apps.actions.kinds so the registry is full before use.

Control looks kinds up only here and asks them only what the contract
(apps/actions/contract.py) declares."""
from __future__ import annotations

from .contract import ActionKind

_REGISTRY: dict[str, type[ActionKind]] = {}


def register(cls: type[ActionKind]) -> type[ActionKind]:
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise RuntimeError(f"action kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def unregister(cls: type[ActionKind]) -> None:
    """Remove a kind (tests that register a kind of their own clean up with it)."""
    if _REGISTRY.get(cls.kind) is cls:
        del _REGISTRY[cls.kind]


def get_kind(kind: str) -> type[ActionKind]:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise LookupError(f"unknown action kind {kind!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_kinds() -> dict[str, type[ActionKind]]:
    return dict(_REGISTRY)


def kinds_that(fact: str) -> frozenset[str]:
    """Names of the kinds whose class attribute ``fact`` is true (e.g.
    "changes_cluster_size"): how control asks about kinds without naming one."""
    return frozenset(name for name, cls in _REGISTRY.items() if getattr(cls, fact))
