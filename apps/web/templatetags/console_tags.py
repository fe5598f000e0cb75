"""Formatting for console pages: sample values, durations, progress, times,
kinds and parameters — one way each, on every page."""
from __future__ import annotations

import json
import math
import re

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.actions.registry import get_kind

register = template.Library()

# Every time a console page shows: "2026-11-30 19:45:11 UTC" (the zone is
# TIME_ZONE's). {% now %} tags use the same string; static/monitoring/graph.js
# writes its times alike.
WHEN_FORMAT = "Y-m-d H:i:s T"

# (from, divisor, suffix): thousands only from 10,000 on, so 1234 stays 1234.
_SI = ((1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k"))


@register.filter
def value(number) -> str:
    """A sample value short enough for a table cell; "—" for no sample."""
    if number is None:
        return "—"
    if not math.isfinite(number):  # a stored threshold past validation (shown with its error)
        return str(number)
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
def spread(summary) -> list[tuple[float | None, bool]]:
    """A counter summary's min, median, p95 and max, each with whether it breaches."""
    from apps.monitoring.choices import breaches

    cells = []
    for number in (summary.min, summary.median, summary.p95, summary.max):
        try:
            hit = number is not None and breaches(number, summary.counter.comparison, summary.counter.threshold)
        except ValueError:  # a stored comparison past validation (shown with its error)
            hit = False
        cells.append((number, hit))
    return cells


#: Series of a trigger listed on a page (a trigger on a 1,000-node cluster
#: has thousands); the rest are counted.
SHOWN_SERIES = 10


def _progress_of(series) -> float:
    progress = series.get("progress") if isinstance(series, dict) else getattr(series, "progress", None)
    return progress or 0


@register.filter
def closest(series) -> list:
    """All series when few, else the SHOWN_SERIES closest to firing."""
    series = list(series or [])
    if len(series) <= SHOWN_SERIES:
        return series
    return sorted(series, key=_progress_of, reverse=True)[:SHOWN_SERIES]


@register.filter
def hidden_count(series) -> int:
    return max(0, len(series or []) - SHOWN_SERIES)


@register.filter
def sort_key(sort: str) -> str:
    """The counter (or name) a ``sort`` value orders by, either way."""
    return (sort or "").lstrip("-")


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


@register.filter
def when(moment) -> str:
    """A time, the console's one way: 2026-11-30 19:45:11 UTC ("" for none)."""
    if moment is None or moment == "":
        return ""
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return format_date(moment, WHEN_FORMAT)


@register.filter
def kind_label(kind: str) -> str:
    """An action kind's display name (DistributedScript), never its stored value."""
    try:
        return get_kind(kind).label
    except LookupError:
        return kind


@register.filter
def param_items(params) -> list[tuple[str, str]]:
    """An action's parameters as (name, readable value) rows for a <dl>."""
    if not isinstance(params, dict):
        return [("", as_json(params))] if params not in (None, "", {}) else []
    rows = []
    for name, item in params.items():
        if isinstance(item, str):
            text = item
        elif isinstance(item, list) and all(isinstance(x, (str, int, float)) for x in item):
            text = ", ".join(str(x) for x in item)
        else:
            text = as_json(item)
        rows.append((str(name), text))
    return rows


@register.filter
def inline_code(text) -> SafeString:
    """Text with `backticks` shown as code (the rest escaped): descriptions are
    written like commit messages, and a literal ` reads as a typo."""
    escaped = escape(text or "")
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped).replace("`", ""))


@register.simple_tag
def progress(count, needed, cooling) -> str:
    """Breach progress of one series: "4/6"; once the count reaches what is
    needed it stays "6/6" (the count goes on during a cooldown), explained."""
    if count is None:
        return "unknown"
    if needed and count >= needed:
        return f"{needed}/{needed} (cooling down)" if cooling else f"{needed}/{needed} (reached)"
    return f"{count}/{needed}"
