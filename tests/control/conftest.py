"""Fixtures shared by the control tests."""
from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def store(memcached_clean, settings):
    """The sample store of the settings, on an empty real memcached."""
    from apps.monitoring.store import SampleStore

    settings.MEMCACHED_SERVERS = memcached_clean
    return SampleStore.from_settings()


@pytest.fixture
def reading(tmp_path) -> Callable[[float], None]:
    """The value the nodes' counter reads (a file on this machine, which is
    every node): ``reading(5.0)`` sets it, ``reading.path`` is the file."""
    path = tmp_path / "reading"

    def write(value: float) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{value}\n")
        tmp.replace(path)  # atomic: a collection never reads half a number

    write.path = path  # type: ignore[attr-defined]
    write(1.0)
    return write
