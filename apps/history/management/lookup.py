"""Finding the row a management command names, by id or by name."""
from __future__ import annotations

from django.core.management.base import CommandError


def find_named(model, text: str, field: str, what: str):
    """The one row of ``model`` with id or name ``text`` (a name of digits is
    looked up by name when no row has that id); a CommandError naming
    ``field`` otherwise."""
    rows = list(model.objects.filter(pk=int(text))) if text.isdigit() else []
    rows = rows or list(model.objects.filter(name=text)[:2])
    if not rows:
        raise CommandError(f"{field}: no {what} {text!r}")
    if len(rows) > 1:
        raise CommandError(f"{field}: several {what}s are named {text!r}; give the id")
    return rows[0]
