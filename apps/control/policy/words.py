"""A decision in an operator's words: "wanted 7, held at 5: scale-in
stabilization until 14:05". Shared by the console, the API and the bench."""
from __future__ import annotations

from datetime import datetime
from typing import Any


def _until(value: Any, fmt: str) -> str:
    if not value:
        return ""
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return f" until {stamp:{fmt}}"


def summary(current: int, raw: int, desired: int, effects: list[dict], fmt: str = "%H:%M") -> str:
    """One line: what the counters wanted, what happens, and the guard(s) that
    changed it. ``effects`` are GuardEffect.as_dict() rows."""
    blocking = [e for e in effects if e.get("blocked")]
    why = "; ".join(f"{e['note']}{_until(e.get('until'), fmt)}" for e in blocking)
    if desired > current:
        head = f"wanted {raw}, scaling out {current} → {desired}"
    elif desired < current:
        head = f"wanted {raw}, scaling in {current} → {desired}"
    elif raw == current and not blocking:
        return f"at {current}, as wanted"
    else:
        head = f"wanted {raw}, held at {current}"
    return f"{head}: {why}" if why else head


def decision_summary(decision, fmt: str = "%H:%M") -> str:
    """summary() of a decide.Decision."""
    return summary(decision.current, decision.raw_desired, decision.desired,
                   [e.as_dict() for e in decision.effects], fmt)
