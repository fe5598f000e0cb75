"""Django templates rendered as plain text (the Email kind's subject and body).

A mail is not HTML: a node called ``o'brien`` must not arrive as
``o&#x27;brien``. Turning escaping off takes both the engine's and the
render context's flag (``Context`` escapes by default whatever the engine
says), so every render goes through :func:`render`. With escaping off,
Django's own ``join`` filter gives up on anything but strings (it returns
the list unjoined), so this module's ``join`` replaces it for these
templates.

The wrappers give context values a readable ``{{ x }}``: breaching values
as "3.2, 4.1" rather than a Python list, a trigger as its name, and what a
firing by hand has not got as a false value that prints why.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.template import Context, Engine

register = template.Library()

#: The engine of plain-text templates (also the one validating them).
ENGINE = Engine(autoescape=False, builtins=[__name__])


def render(source: str, context: dict[str, Any]) -> str:
    return ENGINE.from_string(source or "").render(Context(context, autoescape=False))


@register.filter(is_safe=False)
def join(value: Any, arg: str) -> str:
    """Django's join, for items of any type (numbers, nodes)."""
    try:
        return str(arg).join(str(item) for item in value)
    except TypeError:  # not iterable: as it reads on its own
        return str(value)


class Absent:
    """A value this firing has not got (a firing by hand has no counter): false
    in ``{% if %}`` and ``|default``, empty when iterated, and printed as why."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __str__(self) -> str:
        return self.why

    def __bool__(self) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


class Numbers(list):
    """Breaching values: a list (``values.0``, ``values|last``, ``{% for %}``)
    that prints as "3.2, 4.1"."""

    def __str__(self) -> str:
        return ", ".join(str(v) for v in self)


def numbers(values: Iterable[Any]) -> Numbers:
    """The numbers of a firing's values, whether the evaluator's readings
    ({"stamp", "value"}) or plain numbers."""
    return Numbers(v.get("value") if isinstance(v, dict) else v for v in values)


class Named:
    """A model row that prints as its name (a trigger prints as
    "cluster/name" elsewhere); its fields read through as before."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        if name == "_obj":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._obj, name)

    def __str__(self) -> str:
        return str(self._obj.name)
