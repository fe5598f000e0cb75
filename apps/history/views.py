"""The "Backtest" pages of a trigger and of a scaling policy (admin pages:
staff with the view permission on triggers or policies). Read-only: a
backtest changes nothing, so they are GETs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from apps.control.models import ScalingPolicy, Trigger

from .backtest import backtest
from .policy_backtest import backtest_policy, policy_days_limit

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


def _chart(sizes: list[tuple[int, int, int]], points: int = 1000) -> dict | None:
    """Two step lines (recorded nodes, simulated size) as SVG points, at most
    ``points`` per line (every n-th period of a long range)."""
    if not sizes:
        return None
    every = max(1, len(sizes) // points)
    shown = sizes[::every]
    top = max(1, max(max(r, s) for _, r, s in shown))
    height = 100
    first, last = shown[0][0], shown[-1][0]
    span = max(1, last - first)

    def line(index: int) -> str:
        return " ".join(f"{(row[0] - first) * 1000 / span:.1f},{height - row[index] * (height - 4) / top:.1f}"
                        for row in shown)

    return {"recorded": line(1), "simulated": line(2), "top": top, "height": height}


def policy_backtest_view(request, policy_id: int):
    if not request.user.has_perm("control.view_scalingpolicy"):
        raise PermissionDenied
    policy = get_object_or_404(ScalingPolicy, pk=policy_id)
    start_size = request.GET.get("start_size", "")
    context = {**admin.site.each_context(request), "policy": policy, "days": request.GET.get("days", "7"),
               "start_size": start_size}
    try:
        days = _days(request.GET.get("days"))
        if days > (most := policy_days_limit()):
            raise ValueError(f"days must be at most {most} for a policy (the minute summaries' retention, "
                             f"HISTORY_MINUTE_RETENTION_DAYS), not {days:g}")
        size = None
        if start_size:
            if not start_size.isdigit():
                raise ValueError(f"start_size: {start_size!r} is not a whole number of nodes")
            size = int(start_size)
        end = datetime.now(timezone.utc)
        report = backtest_policy(policy.pk, end - timedelta(days=days), end, start_size=size)
    except ValueError as exc:
        context["error"] = str(exc)
        return render(request, "history/policy_backtest.html", context, status=400)
    blocked = ", ".join(f"{guard} ({n})" for guard, n in sorted(report.blocked.items()))
    context.update(report=report, blocked=blocked, chart=_chart(report.sizes))
    return render(request, "history/policy_backtest.html", context)
