"""AWS failures become ActionErrors carrying AWS's own code and message, and
say whether a retry can help; every wait and call is bounded."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, WaiterError

from apps.actions import aws
from apps.actions.contract import ActionError
from devservers.util import free_port


def client_error(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "RunInstances")


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("InvalidAMIID.NotFound", 400, False),
        ("InvalidSubnetID.NotFound", 400, False),
        ("UnauthorizedOperation", 403, False),
        ("RequestLimitExceeded", 400, True),
        ("Throttling", 400, True),
        ("InsufficientInstanceCapacity", 500, True),
        ("SomethingNew", 503, True),  # any server-side error may pass
    ],
)
def test_client_errors_keep_aws_code_and_message(code, status, retryable):
    error = aws.error_from(client_error(code, f"the message for {code}", status), "launching 1 instance")
    assert isinstance(error, ActionError)
    assert str(error) == f"launching 1 instance: AWS error {code}: the message for {code}"
    assert error.retryable is retryable


def test_aws_errors_context_converts_and_chains():
    with pytest.raises(ActionError, match="doing it: AWS error Throttling: slow down") as info:
        with aws.aws_errors("doing it"):
            raise client_error("Throttling", "slow down")
    assert isinstance(info.value.__cause__, ClientError)


def test_a_waiter_out_of_attempts_is_retryable_a_terminal_state_is_not():
    timed_out = WaiterError("InstanceRunning", "Max attempts exceeded", {})
    terminal = WaiterError("InstanceRunning", "Waiter encountered a terminal failure state", {})
    assert aws.error_from(timed_out, "waiting").retryable
    assert not aws.error_from(terminal, "waiting").retryable


@pytest.mark.parametrize(("budget", "delay", "expected"), [
    (300, 5, {"Delay": 5, "MaxAttempts": 61}),
    (12, 5, {"Delay": 5, "MaxAttempts": 3}),
    (0, 5, {"Delay": 5, "MaxAttempts": 1}),
    (-3, 2, {"Delay": 2, "MaxAttempts": 1}),
])
def test_waiter_config_never_outlives_the_budget(budget, delay, expected):
    config = aws.waiter_config(budget, delay)
    assert config == expected
    assert (config["MaxAttempts"] - 1) * config["Delay"] <= max(budget, 0)


def test_an_unreachable_endpoint_fails_quickly_and_retryably(settings):
    """Nothing listens on the port: the call fails within the bounded retries
    with the endpoint in the message, marked retryable."""
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.AWS_MAX_ATTEMPTS = 2
    settings.AWS_TIMEOUT_S = 2
    started = time.monotonic()
    with pytest.raises(ActionError) as info:
        with aws.aws_errors("describing instances"):
            aws.client("ec2").describe_instances()
    assert time.monotonic() - started < 10
    assert info.value.retryable
    assert "EndpointConnectionError" in str(info.value) and settings.AWS_ENDPOINT_URL in str(info.value)


def test_clients_are_cached_per_endpoint(settings):
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:1"
    first = aws.client("ec2")
    assert aws.client("ec2") is first
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:2"
    assert aws.client("ec2") is not first
    assert aws.client("ec2", "eu-west-1").meta.region_name == "eu-west-1"
