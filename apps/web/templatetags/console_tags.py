"""Formatting for console pages: sample values, durations, progress."""
from __future__ import annotations

import json

from django import template
from django.utils import timezone

register = template.Library()

# (from, divisor, suffix): thousands only from 10,000 on, so 1234 stays 1234.
_SI = ((1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k"))


@register.filter
def value(number) -> str:
    """A sample value short enough for a table cell; "—" for no sample."""
    if number is None:
        return "—"
    magnitude = abs(number)
    for start, divisor, suffix in _SI:
        if magnitude >= start:
            return f"{number / divisor:.3g}{suffix}"
    if float(number).is_integer():
        return str(int(number))
    if magnitude < 1:
        return f"{number:.3g}"
    text = f"{number:.4g}"
    return f"{number:.0f}" if "e" in text else text  # 9999.5 rounds up to 1e+04 otherwise


@register.filter
def percent(fraction) -> int:
    return 0 if fraction is None else round(fraction * 100)


@register.filter
def seconds(total) -> str:
    """4h 2m, 3m 10s, 12s, 0.4s."""
    if total is None:
        return "—"
    total = float(total)
    if total < 10:
        return f"{total:.1f}s"
    minutes, secs = divmod(int(round(total)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def ago(when) -> str:
    """12s ago, 4m 10s ago: finer than timesince for things that happen every few seconds."""
    if when is None:
        return "never"
    return f"{seconds(max(0.0, (timezone.now() - when).total_seconds()))} ago"


@register.filter
def as_json(data) -> str:
    return json.dumps(data, sort_keys=True, default=str)


@register.filter
def pairs(data) -> str:
    """A firing's reasons as "key: value · key: value"."""
    if not isinstance(data, dict):
        return as_json(data)
    return " · ".join(f"{k}: {v if isinstance(v, str) else as_json(v)}" for k, v in data.items())
