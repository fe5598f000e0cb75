"""The memcached harness is a real server across a process boundary: pymemcache
stores and reads through it, and kill/restart behave as the faults they stand for."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheUnexpectedCloseError

from devservers.memcached import MemcachedServer


def _client(address: str) -> Client:
    host, port = address.rsplit(":", 1)
    return Client((host, int(port)), connect_timeout=1, timeout=1)


def test_it_sets_and_gets_through_two_session_servers(memcached_clean: list[str]) -> None:
    assert len(set(memcached_clean)) == 2
    for i, address in enumerate(memcached_clean):
        client = _client(address)
        try:
            client.set("harness.key", f"value-{i}".encode(), noreply=False)
        finally:
            client.close()
    # Each server holds its own value: they really are two processes.
    for i, address in enumerate(memcached_clean):
        client = _client(address)
        try:
            assert client.get("harness.key") == f"value-{i}".encode()
        finally:
            client.close()


def test_it_kills_and_restarts_on_the_same_port_empty(make_memcached: Callable[..., MemcachedServer]) -> None:
    server = make_memcached()
    port = server.port
    client = _client(server.address)
    try:
        client.set("k", b"1", noreply=False)
        assert client.get("k") == b"1"
        server.kill()
        assert not server.running
        with pytest.raises((OSError, MemcacheUnexpectedCloseError)):
            client.get("k")
        server.restart()
        assert server.port == port and server.running
        client.close()
        # The restarted server is empty: memcached is volatile.
        assert client.get("k") is None
    finally:
        client.close()


def test_it_flushes_a_server(make_memcached: Callable[..., MemcachedServer]) -> None:
    server = make_memcached()
    client = _client(server.address)
    try:
        client.set("k", b"1", noreply=False)
        server.flush()
        assert client.get("k") is None
    finally:
        client.close()
