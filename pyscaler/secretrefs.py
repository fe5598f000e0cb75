"""References to secrets, so that the database never holds one in plain text.

A reference is ``env:NAME`` (an environment variable of the worker) or
``file:/absolute/path`` (a file readable by the worker, e.g. a systemd
credential or a Docker secret). The database stores only the reference.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from django.core.exceptions import ValidationError

_REF = re.compile(r"^(?:env:(?P<env>[A-Za-z_][A-Za-z0-9_]*)|file:(?P<file>/\S+))$")


class SecretUnavailable(Exception):
    """The reference is well formed but its secret cannot be read right now."""


def validate_secret_ref(value: str) -> None:
    if value and not _REF.match(value):
        raise ValidationError(
            "%(value)r is not a secret reference: use env:VARIABLE_NAME or file:/absolute/path "
            "(the secret itself is never stored).",
            params={"value": value},
            code="invalid_secret_ref",
        )


def resolve_secret_ref(ref: str) -> str:
    """Return the secret a reference points at, or raise SecretUnavailable."""
    match = _REF.match(ref or "")
    if not match:
        raise SecretUnavailable(f"invalid secret reference {ref!r}")
    if match["env"]:
        try:
            return os.environ[match["env"]]
        except KeyError:
            raise SecretUnavailable(f"environment variable {match['env']} is not set") from None
    try:
        return Path(match["file"]).read_text().strip()
    except OSError as exc:
        raise SecretUnavailable(f"cannot read {match['file']}: {exc.strerror}") from None
