"""boto3 clients configured from settings, and AWS errors as ActionErrors.

Every AWS call an action makes goes through :func:`client` (bounded connect
and read timeouts, bounded retries, the endpoint setting that points tests at
moto) and inside :func:`aws_errors`, so a failing step always carries AWS's own
error code and message and says whether running it again can help.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    WaiterError,
)
from botocore.parsers import ResponseParserError
from django.conf import settings

from .contract import ActionError

#: Error codes after which the same request may succeed later: throttling and
#: transient server-side errors (botocore's standard retry mode treats the same
#: codes as retryable), and EC2's capacity errors, which clear with time.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientCapacity",
    }
)

_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def client_config() -> Config:
    """Timeouts and retries for every AWS client: no step may hang on AWS."""
    timeout = float(settings.AWS_TIMEOUT_S)
    return Config(
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
        retries={"max_attempts": int(settings.AWS_MAX_ATTEMPTS), "mode": "standard"},
    )


def client(service: str, region: str | None = None):
    """A boto3 client for ``service`` ("ec2", "elbv2", "elb").

    Clients are thread-safe and costly to build (~30 ms), so they are cached
    per (service, region, endpoint, timeouts); boto3 sessions are not
    thread-safe, hence one fresh session per client, built under a lock.
    """
    region = region or settings.AWS_DEFAULT_REGION
    key = (service, region, settings.AWS_ENDPOINT_URL, settings.AWS_TIMEOUT_S, settings.AWS_MAX_ATTEMPTS)
    with _clients_lock:
        made = _clients.get(key)
        if made is None:
            made = boto3.session.Session().client(
                service,
                region_name=region,
                endpoint_url=settings.AWS_ENDPOINT_URL,
                config=client_config(),
            )
            _clients[key] = made
    return made


def cluster_client(service: str, cluster) -> Any:
    """A client in the cluster's region (its own, or the default one)."""
    return client(service, getattr(cluster, "ec2_region", "") or None)


def error_from(exc: BaseException, doing: str) -> ActionError:
    """Turn an AWS/botocore exception into an ActionError whose message starts
    with what we were doing and carries AWS's error code and message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message", "") or str(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        retryable = code in RETRYABLE_CODES or status >= 500
        return ActionError(f"{doing}: AWS error {code}: {message}", retryable=retryable)
    if isinstance(exc, WaiterError):
        # "Max attempts exceeded" is our own bound running out (try again
        # later); any other reason is a state the waiter will never leave.
        timed_out = "Max attempts exceeded" in str(exc)
        return ActionError(f"{doing}: {exc}", retryable=timed_out)
    if isinstance(exc, (BotoConnectionError, HTTPClientError, ResponseParserError)):
        # Endpoint unreachable, connect/read timeouts, a garbled answer.
        return ActionError(f"{doing}: {type(exc).__name__}: {exc}", retryable=True)
    if isinstance(exc, NoCredentialsError):
        return ActionError(
            f"{doing}: no AWS credentials found (boto3's credential chain: environment, "
            f"shared files, instance role)", retryable=False
        )
    return ActionError(f"{doing}: {type(exc).__name__}: {exc}", retryable=False)


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Raise every AWS failure inside the block as an ActionError."""
    try:
        yield
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        raise error_from(exc, doing) from exc


def waiter_config(budget_s: float, delay_s: float | None = None) -> dict[str, int]:
    """A boto3 WaiterConfig that gives up after about ``budget_s`` seconds.

    The waiter polls once at once, then every Delay seconds; MaxAttempts is
    derived from the budget so the wait can never outlive the step's deadline.
    """
    delay = max(1, int(round(delay_s if delay_s is not None else settings.AWS_WAITER_DELAY_S)))
    attempts = max(1, math.floor(max(0.0, budget_s) / delay) + 1)
    return {"Delay": delay, "MaxAttempts": attempts}
