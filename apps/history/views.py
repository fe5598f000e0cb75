"""The trigger's "Backtest" page (an admin page: staff with the view
permission on triggers). Read-only: a backtest changes nothing, so it is a GET."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from apps.control.models import Trigger

from .backtest import backtest

MAX_DAYS = 3650


def _describe(breaches: list[dict]) -> str:
    return "; ".join(f"{b['counter']} on {b['node'] or 'cluster ' + b['aggregation']}: "
                     + ", ".join("—" if v is None else f"{v:g}" for v in b["values"]) for b in breaches)


def _days(text: str | None) -> float:
    try:
        days = float(text or 7)
    except ValueError:
        raise ValueError(f"days: {text!r} is not a number") from None
    if not 0 < days <= MAX_DAYS:
        raise ValueError(f"days must be more than 0 and at most {MAX_DAYS}, not {text}")
    return days


def backtest_view(request, trigger_id: int):
    if not request.user.has_perm("control.view_trigger"):
        raise PermissionDenied
    trigger = get_object_or_404(Trigger, pk=trigger_id)
    context = {**admin.site.each_context(request), "trigger": trigger, "days": request.GET.get("days", "7"),
               "resolution": request.GET.get("resolution", "")}
    try:
        days = _days(request.GET.get("days"))
        if context["resolution"] not in ("", "raw", "1m"):
            raise ValueError(f"resolution: {context['resolution']!r} is not raw or 1m")
    except ValueError as exc:
        context["error"] = str(exc)
        return render(request, "history/backtest.html", context, status=400)
    end = datetime.now(timezone.utc)
    report = backtest(trigger.pk, end - timedelta(days=days), end, resolution=context["resolution"] or None)
    span = (report.end - report.start).total_seconds()
    rows = [{"time": f["time"], "what": "fired", "label": "would fire", "detail": _describe(f["breaches"])}
            for f in report.firings]
    rows += [{"time": f["time"], "what": "suppressed",
              "label": f"suppressed by the cooldown (until {f['cooldown_until']}): reached at {f['evaluations']} "
                       f"evaluation(s) up to {f['last']}", "detail": _describe(f["breaches"])}
             for f in report.suppressed]
    rows.sort(key=lambda row: row["time"])
    positions = [round((datetime.fromisoformat(f["time"]) - report.start).total_seconds() / span * 100, 2)
                 for f in report.firings]
    context.update(report=report, rows=rows, chart_positions=positions,
                   chart_times=",".join(f["time"] for f in report.firings))
    return render(request, "history/backtest.html", context)
