"""References to secrets, so that the database never holds one in plain text.

A reference is ``env:NAME`` (an environment variable of the worker) or
``file:/absolute/path`` (a file readable by the worker, e.g. a systemd
credential or a Docker secret). The database stores only the reference.

A reference may not name just any variable or file of the worker: whoever can
edit a cluster or a JVM record would otherwise have the worker send, say,
``env:AWS_SECRET_ACCESS_KEY`` or ``file:/etc/pyscaler/pyscaler.env`` as a
password to a host of their choosing. Variables must start with
``SECRET_REF_ENV_PREFIX`` and files must lie in ``SECRET_REF_DIR`` (symbolic
links resolved). Both rules are checked when a reference is saved and again
when it is resolved, so a row written around the form is refused too.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

_REF = re.compile(r"^(?:env:(?P<env>[A-Za-z_][A-Za-z0-9_]*)|file:(?P<file>/\S+))$")


class SecretUnavailable(Exception):
    """The reference is well formed but its secret cannot be read right now."""


def _env_prefix() -> str:
    return settings.SECRET_REF_ENV_PREFIX


def _secret_dir() -> Path:
    return Path(os.path.realpath(settings.SECRET_REF_DIR))


def refusal(ref: str) -> str | None:
    """Why a reference may not be used, or None when it may."""
    match = _REF.match(ref or "")
    if not match:
        return (f"{ref!r} is not a secret reference: use env:{_env_prefix()}NAME or "
                f"file:{_secret_dir()}/name (the secret itself is never stored)")
    if match["env"]:
        if not match["env"].startswith(_env_prefix()):
            return (f"{ref!r} names a variable outside the secret prefix: its name must start with "
                    f"{_env_prefix()} (SECRET_REF_ENV_PREFIX)")
        return None
    if not Path(os.path.realpath(match["file"])).is_relative_to(_secret_dir()):
        return f"{ref!r} names a file outside {_secret_dir()} (SECRET_REF_DIR)"
    return None


def validate_secret_ref(value: str) -> None:
    reason = refusal(value) if value else None
    if reason:
        raise ValidationError("%(reason)s.", params={"reason": reason}, code="invalid_secret_ref")


def resolve_secret_ref(ref: str) -> str:
    """Return the secret a reference points at, or raise SecretUnavailable."""
    reason = refusal(ref)
    if reason:
        raise SecretUnavailable(reason)
    match = _REF.match(ref)
    if match["env"]:
        try:
            return os.environ[match["env"]]
        except KeyError:
            raise SecretUnavailable(f"environment variable {match['env']} is not set") from None
    try:
        return Path(match["file"]).read_text().strip()
    except OSError as exc:
        raise SecretUnavailable(f"cannot read {match['file']}: {exc.strerror}") from None
