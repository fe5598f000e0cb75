"""System check: production must not run on placeholder or short secrets.

deploy/pyscaler.env.example ships ``CHANGE_ME`` for SECRET_KEY,
METRICS_TOKEN and COLLECT_SIGNING_KEY; a copy that was never edited would otherwise start fine, with
a session-signing key and a scrape token anyone can read in the repository.
An Error (not a --deploy warning), so plain ``manage.py check``, ``migrate``
(run before every release starts) and ``runserver`` refuse too; gunicorn,
which runs no checks, is refused by pyscaler/wsgi.py calling
refuse_weak_secrets(). With DEBUG on (development) anything goes.
"""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

PLACEHOLDERS = frozenset({"change_me", "changeme", "change-me", "secret", "password", "xxx", "todo"})
# name -> (shortest accepted length, may it be empty?)
# An empty token turns /metrics off; the collect signing key is what keeps a
# broker publisher from running commands on nodes (collection.signing).
RULES = {"SECRET_KEY": (32, False), "METRICS_TOKEN": (16, True), "COLLECT_SIGNING_KEY": (32, False)}


def secret_problem(name: str, value: str) -> str | None:
    least, may_be_empty = RULES[name]
    if not value:
        return None if may_be_empty else f"{name} is empty"
    if value.strip().lower() in PLACEHOLDERS:
        return f"{name} is the placeholder {value}: set a random value (see deploy/pyscaler.env.example)"
    if len(value) < least:
        return f"{name} is {len(value)} characters long; use at least {least} random characters"
    return None


@register("security")
def check_secrets(app_configs=None, **kwargs) -> list[Error]:
    if settings.DEBUG:
        return []
    errors = []
    for index, name in enumerate(RULES, start=1):
        problem = secret_problem(name, getattr(settings, name, "") or "")
        if problem:
            errors.append(Error(problem, hint=f"Set {name} (or {name}_FILE) in the environment.",
                                id=f"pyscaler.E00{index}"))
    return errors


@register("security", deploy=True)
def check_collect_signing_key(app_configs=None, **kwargs) -> list[Error]:
    """Beat and the collect workers must share one signing key: each host's
    generated one (var/collect_signing_key) would make every worker refuse
    every collect task of a beat on another host."""
    if settings.DEBUG or getattr(settings, "COLLECT_SIGNING_KEY_SET", True):
        return []
    return [Error("COLLECT_SIGNING_KEY is not set (each host would sign and check collect tasks with a key "
                  "of its own)", hint="Set COLLECT_SIGNING_KEY (or COLLECT_SIGNING_KEY_FILE) to the same "
                  "value on the beat host and every collect worker.", id="pyscaler.E010")]


def refuse_weak_secrets() -> None:
    """Raise ImproperlyConfigured naming every weak secret (the WSGI entry
    point calls it, so gunicorn does not start on a placeholder)."""
    errors = check_secrets()
    if errors:
        raise ImproperlyConfigured("; ".join(e.msg for e in errors))
