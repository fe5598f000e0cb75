"""Schemathesis generates requests for every operation of /api/v1/openapi.json
and sends them to the WSGI app, authenticated with an admin's token: no 5xx,
and every answer matches the description (status codes, content types,
response schemas). Bounded: a few derandomized examples per operation.

Driven through Hypothesis's ``@given`` with each operation's strategy rather
than ``schema.parametrize()``: schemathesis's lazy pytest integration reads a
private attribute pytest 9 no longer has.
"""
from __future__ import annotations


import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 10
# "Schema-valid data must be accepted" cannot hold here: rules across
# parameters (to after from, a counter id that exists, a node of the counter's
# cluster) are not expressible in OpenAPI, and breaking them is a 400 naming
# the parameter, by design. Every other check runs.
EXCLUDED = [positive_data_acceptance]


@pytest.fixture
def wsgi_app(db):
    """The project's WSGI app, called in-process. Django closes the database
    connection when a request ends; in a test that would end the test's
    transaction, so that is held off meanwhile (as Django's test Client does)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from pyscaler.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_api_matches_its_openapi_description(wsgi_app, admin_user_in_group, console_world, sample_store):
    token = Token.objects.create(user=admin_user_in_group).key
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    calls: dict[str, int] = {}
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            calls[label] = calls.get(label, 0) + 1
            case.call_and_validate(headers={"Authorization": f"Token {token}"}, excluded_checks=EXCLUDED)

        check()
    assert all(calls.get(f"{o.method.upper()} {o.path}") for o in operations), calls
