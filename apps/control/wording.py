"""Words and chart data shared by everything that explains a decision to a
person: a trigger execution's "why" today (why.py), a scaling policy's
decision record later.

Pure functions over plain values (numbers, datetimes, ISO strings): no
database, no request. They live in apps/control, not in the web layer,
because Django admin (apps/control/admin.py) shows the same words as the
console and the API, and nothing below the web layer may import it
(.importlinter, "web-on-top"). Every function takes what an old or damaged
record may hold (None, a string where a number belongs, NaN) and answers
words anyway: an explanation must never be the reason a page fails.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

#: How a comparison reads in a sentence and on a chart's threshold label.
SIGNS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}

#: How many values a sentence lists before "…".
SHOWN_VALUES = 5

MISSING = "missing"


def as_float(raw: Any) -> float | None:
    """A finite number from a recorded value, else None (a bool, text, NaN
    or infinity is not a sample value; JSON for the browser cannot carry NaN)."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def number(raw: Any) -> str:
    """A value as a person reads it: 1.4, 0.25, 512M, 12k (never 1.4000000001)."""
    value = as_float(raw)
    if value is None:
        return MISSING
    magnitude = abs(value)
    for start, divisor, suffix in ((1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if magnitude >= start:
            return f"{value / divisor:.3g}{suffix}"
    if value.is_integer():
        return str(int(value))
    return f"{value:.4g}"


def sign(comparison: Any) -> str:
    """≥ for ">=" (the seed's "reaches"); an unknown comparison as recorded."""
    text = str(comparison or "").strip()
    return SIGNS.get(text, text or "?")


def values_text(values: Iterable[Any], shown: int = SHOWN_VALUES) -> str:
    """ "1.4, 1.2, 1.9, …, 1.6" — the first few values and, when some are
    left out, the last (the newest, in a series oldest first)."""
    values = list(values)
    if len(values) <= shown:
        return ", ".join(number(v) for v in values)
    return ", ".join([number(v) for v in values[:max(1, shown - 1)]] + ["…", number(values[-1])])


def parse_moment(raw: Any) -> datetime | None:
    """A recorded time (ISO 8601 text, a datetime or epoch seconds) as an
    aware datetime; None when it is not one."""
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            return None
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
        try:
            moment = datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def moment_text(moment: datetime, *, with_date: bool = True) -> str:
    """The console's way of writing a time: 2026-11-30 14:02:10 UTC (in
    TIME_ZONE); without the date when the sentence already said it."""
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if with_date else "%H:%M:%S %Z")


def span_text(start: datetime | None, end: datetime | None) -> str:
    """ "from 2026-11-30 14:02:10 to 14:03:00 UTC", "at …", or "" without times."""
    if start is None or end is None:
        moment = start or end
        return f"at {moment_text(moment)}" if moment else ""
    if start > end:
        start, end = end, start
    if start == end:
        return f"at {moment_text(start)}"
    same_day = timezone.localtime(start).date() == timezone.localtime(end).date()
    first = timezone.localtime(start).strftime("%Y-%m-%d %H:%M:%S") if same_day else moment_text(start)
    return f"from {first} to {moment_text(end, with_date=not same_day)}"


def duration_text(seconds: Any) -> str:
    """5 min, 90 s, 2 h, 1 h 30 min ("" when not a duration)."""
    value = as_float(seconds)
    if value is None or value < 0:
        return ""
    whole = round(value)
    if whole < 120 and whole % 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ---------------------------------------------------------------------------
# Chart data: lines of values against one horizontal line
# ---------------------------------------------------------------------------
@dataclass
class ChartLine:
    label: str
    values: list[float | None]


@dataclass
class ThresholdChart:
    """What static/console/threshold_chart.js draws with uPlot: one line per
    series (node) over shared stamps (epoch seconds; None where a line has no
    value), and a dashed horizontal line at ``threshold`` labelled
    "<line_label> (≥ 1.5)". A policy decision passes its target as the line."""

    title: str
    comparison: str
    threshold: float
    stamps: list[float] = field(default_factory=list)
    lines: list[ChartLine] = field(default_factory=list)
    line_label: str = "threshold"
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "comparison": self.comparison, "sign": sign(self.comparison),
            "threshold": self.threshold, "line_label": self.line_label, "unit": self.unit,
            "threshold_label": f"{self.line_label} ({sign(self.comparison)} {number(self.threshold)})",
            "stamps": self.stamps, "lines": [{"label": ln.label, "values": ln.values} for ln in self.lines],
        }


def threshold_chart(title: str, comparison: str, threshold: Any,
                    lines: Mapping[str, Iterable[tuple[datetime | None, Any]]], *,
                    line_label: str = "threshold", unit: str = "") -> ThresholdChart | None:
    """A chart of ``lines`` ({label: [(time, value), ...]}) against the
    threshold; None when there is nothing to draw (no threshold, no dated
    point). Points without a time are left out; values that are not finite
    numbers are gaps."""
    level = as_float(threshold)
    if level is None:
        return None
    points = {label: [(t, as_float(v)) for t, v in pts if t is not None] for label, pts in lines.items()}
    stamps = sorted({t.timestamp() for pts in points.values() for t, _ in pts})
    if not stamps:
        return None
    position = {stamp: i for i, stamp in enumerate(stamps)}
    chart = ThresholdChart(title, str(comparison or ""), level, [float(s) for s in stamps],
                           line_label=line_label, unit=unit)
    for label, pts in points.items():
        values: list[float | None] = [None] * len(stamps)
        for t, v in pts:
            values[position[t.timestamp()]] = v
        chart.lines.append(ChartLine(label, values))
    return chart
