"""/healthz answers 200 only when the database, the real RabbitMQ and every
memcached server answer; otherwise 503 naming what is down, quickly, without
logging in and without leaking addresses or passwords."""
import json
import socket
import time
from collections.abc import Iterator

import pytest

from pyscaler import health
from pyscaler.health import CHECK_TIMEOUT_S
from devservers.util import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]

# Any answer slower than this means a check waited for a timeout it should not have.
QUICK_S = 1.5


@pytest.fixture(autouse=True)
def fresh_probe() -> None:
    """Each test probes: a result cached by an earlier test is not its answer."""
    health.forget_results()


@pytest.fixture
def live(settings, memcached_servers: list[str]) -> list[str]:
    settings.MEMCACHED_SERVERS = memcached_servers
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    return memcached_servers


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and then says nothing: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def get(client, path: str = "/healthz") -> tuple[int, dict, float]:
    started = time.monotonic()
    response = client.get(path)
    return response.status_code, json.loads(response.content), time.monotonic() - started


def test_it_answers_200_when_everything_answers(client, live):
    status, body, elapsed = get(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert body["checks"] == {"database": "ok", "broker": "ok", "memcached": "ok"}
    assert elapsed < QUICK_S


def test_it_names_memcached_when_one_server_is_down(client, live, settings):
    closed = f"127.0.0.1:{free_port()}"
    settings.MEMCACHED_SERVERS = [live[0], closed]
    status, body, elapsed = get(client)
    assert status == 503
    assert body["failing"] == ["memcached"]
    assert body["checks"]["memcached"].startswith("unavailable: 1 of 2 servers down")
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"
    assert closed not in json.dumps(body)  # addresses go to the log, not to anonymous callers
    assert elapsed < QUICK_S


def test_it_names_the_broker_when_it_is_down(client, live, settings):
    settings.CELERY_BROKER_URL = f"amqp://pyscaler:s3cret-pw@127.0.0.1:{free_port()}//"
    status, body, elapsed = get(client)
    assert status == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["memcached"] == "ok"
    assert "s3cret-pw" not in json.dumps(body)
    assert elapsed < QUICK_S


def test_a_broker_that_accepts_but_never_answers_fails_within_the_timeout(client, live, settings,
                                                                          silent_port):
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{silent_port}//"
    status, body, elapsed = get(client)
    assert status == 503
    assert body["failing"] == ["broker"]
    assert elapsed < CHECK_TIMEOUT_S + 1.5


def test_a_memcached_that_never_answers_fails_within_its_timeout(client, live, settings, silent_port):
    settings.MEMCACHED_SERVERS = [f"127.0.0.1:{silent_port}"]
    settings.MEMCACHED_TIMEOUT_S = 0.3
    status, body, elapsed = get(client)
    assert status == 503
    assert body["failing"] == ["memcached"]
    assert elapsed < 0.3 * 2 + 1.0


def test_everything_down_is_named_at_once(client, live, settings):
    settings.MEMCACHED_SERVERS = [f"127.0.0.1:{free_port()}"]
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    status, body, _ = get(client)
    assert status == 503
    assert body["status"] == "fail"
    assert body["failing"] == ["broker", "memcached"]


def test_it_needs_no_login_is_never_cached_and_refuses_writes(client, live):
    response = client.get("/healthz")
    assert response.status_code == 200  # anonymous client: no redirect to the login page
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
