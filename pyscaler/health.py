"""/healthz: is this PyScaler process able to do its work?

Load balancers, Docker's HEALTHCHECK and monitoring poll it without logging in,
so the answer names the failing dependency and the class of error only; the
addresses and messages (which may hold a broker password or internal host
names) go to the log. Every check has a short timeout: a health check that
hangs on a dead broker is worse than one that says "down".

The probe result is reused for HEALTHZ_CACHE_S seconds (default 5): the
endpoint is unauthenticated, and each probe opens a database, a broker and a
memcached connection, so a burst of requests must not become a burst of
connections. A changed address (settings) is probed at once.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu import Connection
from pymemcache.client.base import Client as MemcacheClient
from pymemcache.client.base import normalize_server_spec

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
DEFAULT_CACHE_S = 5.0

_opened = {"broker": 0}  # connections this process's checks opened (tests read it)
_cache_lock = threading.Lock()
_cached: dict[tuple, tuple[float, dict[str, str]]] = {}


class CheckFailed(Exception):
    """A dependency did not answer; the message is safe to show unauthenticated."""


def check_database() -> None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("healthz: database unavailable: %s", exc)
        raise CheckFailed(type(exc).__name__) from exc


def check_broker() -> None:
    # max_retries=0: kombu's default is to retry for ever with back-off; a
    # health check must answer within its own timeout instead.
    conn = Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_S, heartbeat=0)
    _opened["broker"] += 1
    try:
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_S)
    except Exception as exc:
        logger.warning("healthz: broker unavailable: %s", exc)
        raise CheckFailed(type(exc).__name__) from exc
    finally:
        conn.release()


def check_memcached() -> None:
    """Every configured server must answer: keys are spread over all of them,
    so one dead server means a share of the samples is being lost."""
    timeout = min(settings.MEMCACHED_TIMEOUT_S, CHECK_TIMEOUT_S)
    servers = list(settings.MEMCACHED_SERVERS)
    failed: list[str] = []
    for server in servers:
        client = MemcacheClient(normalize_server_spec(server), connect_timeout=timeout, timeout=timeout)
        try:
            client.version()
        except Exception as exc:
            logger.warning("healthz: memcached %s unavailable: %s", server, exc)
            failed.append(type(exc).__name__)
        finally:
            client.close()
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(servers)} servers down ({', '.join(sorted(set(failed)))})")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "memcached": check_memcached,
}


def run_checks() -> dict[str, str]:
    """Run every check; returns component -> "ok" or the reason it failed."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except CheckFailed as exc:
            results[name] = f"unavailable: {exc}"
    return results


def broker_connections_opened() -> int:
    return _opened["broker"]


def forget_results() -> None:
    with _cache_lock:
        _cached.clear()


def _probe_key() -> tuple:
    database = connections["default"].settings_dict
    return (database.get("ENGINE"), database.get("NAME"), database.get("HOST"), database.get("PORT"),
            settings.CELERY_BROKER_URL, tuple(settings.MEMCACHED_SERVERS))


def cached_checks() -> dict[str, str]:
    """run_checks(), or its result of the last HEALTHZ_CACHE_S seconds for the
    same addresses. The lock makes concurrent requests share one probe."""
    max_age = float(getattr(settings, "HEALTHZ_CACHE_S", DEFAULT_CACHE_S))
    key = _probe_key()
    with _cache_lock:
        hit = _cached.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return dict(hit[1])
        results = run_checks()
        _cached.clear()
        _cached[key] = (time.monotonic(), results)
        return dict(results)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    checks = cached_checks()
    failing = sorted(name for name, result in checks.items() if result != "ok")
    body = {
        "status": "fail" if failing else "ok",
        "failing": failing,
        "checks": checks,
        "duration_ms": round((time.monotonic() - started) * 1000),
    }
    return JsonResponse(body, status=503 if failing else 200)
