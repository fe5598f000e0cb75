"""Scheduled capacity windows: a cron expression says when a window opens and
a duration how long it stays in force ("0 8 * * 1-5" for 720 minutes:
weekdays 08:00–20:00)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

from .inputs import Schedule


def cron_error(expression: str) -> str:
    """Why ``expression`` is not a cron expression ("" when it is)."""
    if len(expression.split()) != 5:
        return f"{expression!r} is not a cron expression of 5 fields (minute hour day month weekday)"
    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression"
    return ""


@dataclass(frozen=True)
class Window:
    name: str
    cron: str
    duration_minutes: int
    min_size: int | None = None
    max_size: int | None = None
    desired_size: int | None = None

    def in_force(self, now: datetime) -> Schedule | None:
        """The window as a Schedule if it is open at ``now`` (aware, in the
        time zone its cron expression is meant in), else None."""
        opened = croniter(self.cron, now + timedelta(microseconds=1)).get_prev(datetime)
        until = opened + timedelta(minutes=self.duration_minutes)
        if opened <= now < until:
            return Schedule(self.name, self.min_size, self.max_size, self.desired_size, until)
        return None


def in_force(windows: list[Window], now: datetime) -> Schedule | None:
    """The windows open at ``now`` merged: the highest minimum, the lowest
    maximum, the highest desired size; None when none is open."""
    open_ = [s for w in windows if (s := w.in_force(now)) is not None]
    if not open_:
        return None
    if len(open_) == 1:
        return open_[0]

    def pick(values, how):
        present = [v for v in values if v is not None]
        return how(present) if present else None

    return Schedule(
        " + ".join(s.name for s in open_),
        pick([s.min_size for s in open_], max),
        pick([s.max_size for s in open_], min),
        pick([s.desired_size for s in open_], max),
        min(s.until for s in open_ if s.until),
    )
