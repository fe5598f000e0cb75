"""Import in one call: read a document, plan it, apply it (or only plan it)."""
from __future__ import annotations

from collections.abc import Iterable

from .apply import apply_plan
from .document import load
from .plan import Plan, make_plan


def import_text(text: str | bytes, *, prune: bool = False, dry_run: bool = False,
                excludes: Iterable[str] = ()) -> Plan:
    """The plan of ``text``, applied unless ``dry_run`` (which still checks
    every object, and rolls back). Raises ConfigError, changing nothing."""
    plan = make_plan(load(text), prune=prune, excludes=excludes)
    return apply_plan(plan, dry_run=dry_run)
