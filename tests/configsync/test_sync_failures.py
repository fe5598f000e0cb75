"""A remote that answers garbage or never answers changes nothing here, and
the attempt is recorded with the reason."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from apps.configsync.models import RemoteInstance, SyncRecord
from apps.configsync.sync import sync
from devservers.util import free_port, stop_process, wait_for_port

from .confkit import current


@pytest.fixture
def garbage_server(tmp_path) -> Iterator[str]:
    """A real web server (Python's http.server) whose /api/v1/config is not a configuration."""
    (tmp_path / "api" / "v1").mkdir(parents=True)
    (tmp_path / "api" / "v1" / "config").write_text("<html><body>Welcome to nginx!</body></html>\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                             str(tmp_path), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc=proc, what="http.server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A listening socket that never accepts: connections complete (kernel backlog), nothing answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def remote(url: str, **fields) -> RemoteInstance:
    return RemoteInstance.objects.create(name="staging", base_url=url, token_ref="env:PYSCALER_SECRET_TOKEN",
                                         **fields)


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("PYSCALER_SECRET_TOKEN", "some-token")


def test_garbage_changes_nothing_and_is_recorded(console_world, garbage_server, admin_user_in_group):
    before = current()
    result = sync(remote(garbage_server), user=admin_user_in_group)
    assert not result.ok and current() == before
    record = SyncRecord.objects.get()
    assert record.error.startswith("nothing changed: not a PyScaler configuration")
    assert record.by == "user alice" and record.url == f"{garbage_server}/api/v1/config?format=json"


def test_a_remote_that_never_answers_times_out(console_world, silent_server):
    before = current()
    started = time.monotonic()
    result = sync(remote(silent_server, timeout_s=1, clusters="web"), by="test")
    assert time.monotonic() - started < 10
    assert not result.ok and current() == before
    assert result.record.error == (f"staging did not answer within 1 s "
                                   f"({silent_server}/api/v1/config?format=json&cluster=web)")


def test_a_missing_token_is_named(console_world, garbage_server, monkeypatch):
    monkeypatch.delenv("PYSCALER_SECRET_TOKEN")
    result = sync(remote(garbage_server), by="test")
    assert result.record.error == ("the API token of staging is unavailable: environment variable "
                                   "PYSCALER_SECRET_TOKEN is not set")


def test_a_remote_instance_refuses_a_token_in_plain_text(db):
    from django.core.exceptions import ValidationError

    instance = RemoteInstance(name="staging", base_url="ftp://staging", token_ref="0123456789abcdef")
    with pytest.raises(ValidationError) as info:
        instance.full_clean()
    assert set(info.value.message_dict) == {"base_url", "token_ref"}
