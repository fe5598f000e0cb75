"""Brute-force protection (issue 15, security 5): after AXES_FAILURE_LIMIT
wrong passwords for an account, the console's and the admin's login refuse
even the right password until the lockout ends or is reset; sessions last
SESSION_COOKIE_AGE (12 h by default), not two weeks."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PASSWORD = "oscar-pw-1234"  # tests/fixtures/base.py's operator_user
LOGIN_PAGES = ["/login/", "/admin/login/"]


@pytest.fixture
def limit(settings) -> int:
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def post(client, path: str, password: str):
    return client.post(path, {"username": "oscar", "password": password})


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_the_right_password_logs_in_before_any_failure(client, operator_user, limit, path):
    response = post(client, path, PASSWORD)
    assert response.status_code == 302 and logged_in(client)


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_wrong_passwords_lock_the_account_until_reset(client, operator_user, limit, path):
    for _ in range(limit):
        assert post(client, path, "wrong").status_code in (200, 429)
        assert not logged_in(client)
    response = post(client, path, PASSWORD)
    assert response.status_code == 429, response.status_code
    assert "Too many wrong passwords for this account (3 in a row)" in response.content.decode()
    assert not logged_in(client)

    call_command("axes_reset_username", "oscar")
    response = post(client, path, PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_the_lockout_ends_after_the_cool_off(client, operator_user, limit, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for _ in range(limit):
        post(client, "/login/", "wrong")
    assert post(client, "/login/", PASSWORD).status_code == 429
    time.sleep(1.2)
    response = post(client, "/login/", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_failures_below_the_limit_do_not_lock(client, operator_user, limit):
    for _ in range(limit - 1):
        post(client, "/login/", "wrong")
    response = post(client, "/login/", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_sessions_last_twelve_hours_by_default():
    from django.conf import settings

    assert settings.SESSION_COOKIE_AGE == 12 * 3600


def test_wrong_passwords_for_many_names_lock_the_address(client, operator_user, limit):
    for number in range(limit):
        client.post("/login/", {"username": f"guess{number}", "password": "wrong"})
    assert post(client, "/login/", PASSWORD).status_code == 429
    call_command("axes_reset_ip", "127.0.0.1")
    assert post(client, "/login/", PASSWORD).status_code == 302


def test_behind_the_proxy_the_address_nginx_saw_is_locked_not_the_proxy(client, operator_user, limit, settings):
    settings.BEHIND_TLS_PROXY = True
    attacker = {"HTTP_X_REAL_IP": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    for number in range(limit):
        client.post("/login/", {"username": f"guess{number}", "password": "wrong"}, **attacker)
    assert client.post("/login/", {"username": "oscar", "password": PASSWORD}, **attacker).status_code == 429
    other = {"HTTP_X_REAL_IP": "198.51.100.7", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    response = client.post("/login/", {"username": "oscar", "password": PASSWORD}, **other)
    assert response.status_code == 302 and logged_in(client)
