"""Import in one call: read a document, plan it, apply it (or only plan it)."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import transaction

from .apply import apply_plan
from .document import load
from .plan import Plan, make_plan
from .sections import ConfigError


def digest(plan: Plan) -> str:
    """What a person approved: the plan's text, hashed (admin's Apply sends it back)."""
    return hashlib.sha256(plan.text().encode()).hexdigest()


def import_text(text: str | bytes, *, prune: bool = False, dry_run: bool = False,
                excludes: Iterable[str] = (), expect: str | None = None) -> Plan:
    """The plan of ``text``, applied unless ``dry_run`` (which still checks
    every object, and rolls back). Raises ConfigError, changing nothing.

    ``expect``: the digest of the plan shown before; when the plan is now a
    different one (the database or the remote changed meanwhile), nothing is
    applied, so nobody applies a plan they did not see."""
    document = load(text)
    with transaction.atomic():
        plan = make_plan(document, prune=prune, excludes=excludes)
        if expect is not None and digest(plan) != expect:
            raise ConfigError("the plan changed since it was shown (the configuration here or the file's "
                              f"source changed meanwhile); nothing was applied. The plan now:\n{plan.text()}")
        return apply_plan(plan, dry_run=dry_run)
