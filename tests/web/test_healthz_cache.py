"""/healthz reuses its probe result for a few seconds (issue 15, security 8):
a burst of requests opens one broker connection, not one each. Counted by
the health module's own counter of broker connections it opened, against the
real RabbitMQ."""
from __future__ import annotations

import json

import pytest

from pyscaler import health

pytestmark = [pytest.mark.django_db, pytest.mark.dbbackends]


@pytest.fixture
def live(settings, memcached_servers: list[str]) -> None:
    settings.MEMCACHED_SERVERS = memcached_servers
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    settings.HEALTHZ_CACHE_S = 5
    health.forget_results()


def test_two_requests_within_the_window_open_one_broker_connection(client, live):
    before = health.broker_connections_opened()
    first = client.get("/healthz")
    second = client.get("/healthz")
    assert first.status_code == second.status_code == 200
    assert health.broker_connections_opened() - before == 1
    assert json.loads(first.content)["checks"] == json.loads(second.content)["checks"]


def test_a_request_after_the_window_probes_again(client, live, settings):
    settings.HEALTHZ_CACHE_S = 0
    before = health.broker_connections_opened()
    client.get("/healthz")
    client.get("/healthz")
    assert health.broker_connections_opened() - before == 2


def test_a_changed_broker_address_is_probed_at_once(client, live, settings):
    assert client.get("/healthz").status_code == 200
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.content)["failing"] == ["broker"]
