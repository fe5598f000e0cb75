"""A remote over https: its certificate is checked, against the remote's own
CA file when one is given; a certificate nobody vouches for changes nothing."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.configsync.document import dump
from apps.configsync.models import RemoteInstance
from apps.configsync.sync import sync
from apps.control.models import Cluster
from devservers.util import free_port, stop_process, wait_for_port
from tests.deploy.test_deploy_web import self_signed_cert

from .confkit import cluster_of, current


@pytest.fixture
def https_remote(tmp_path) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, its certificate, the directory it serves)."""
    root = tmp_path / "www"
    (root / "api" / "v1").mkdir(parents=True)
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("tls_static_server.py")), str(root),
                             str(port), str(cert), str(key)], stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc=proc, what="https server")
        yield f"https://localhost:{port}", cert, root
    finally:
        stop_process(proc)


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("PYSCALER_SECRET_TOKEN", "some-token")


def test_an_https_remote_with_its_ca_file(console_world, https_remote):
    url, cert, root = https_remote
    doc = current()
    cluster_of(doc)["max_size"] = 6
    (root / "api" / "v1" / "config").write_text(dump(doc, "json"))
    remote = RemoteInstance.objects.create(name="staging", base_url=url, token_ref="env:PYSCALER_SECRET_TOKEN",
                                           ca_file=str(cert))
    result = sync(remote, by="test")
    assert result.ok, result.record.error
    assert result.record.plan == "update cluster web\n    max_size: 4 → 6\nplan: 0 to create, 1 to update, 0 to delete\n"
    assert Cluster.objects.get(name="web").max_size == 6


def test_an_untrusted_certificate_changes_nothing(console_world, https_remote):
    url, _, root = https_remote
    doc = current()
    cluster_of(doc)["max_size"] = 6
    (root / "api" / "v1" / "config").write_text(dump(doc, "json"))
    remote = RemoteInstance.objects.create(name="staging", base_url=url, token_ref="env:PYSCALER_SECRET_TOKEN")
    result = sync(remote, by="test")
    assert not result.ok and "certificate verify failed" in result.record.error
    assert result.record.error.startswith(f"cannot reach staging at {url}/api/v1/config")
    assert Cluster.objects.get(name="web").max_size == 4
