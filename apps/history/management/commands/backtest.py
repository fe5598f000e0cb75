"""manage.py backtest TRIGGER --days 7 — which firings a trigger would have made."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from django.core.management.base import BaseCommand, CommandError

from apps.control.models import Trigger
from apps.history.backtest import backtest
from apps.history.logseries import SampleLogError, log_files


class Command(BaseCommand):
    help = ("Replay a trigger (id or name) over the recorded history with PyScaler's own evaluator on a "
            "simulated clock, and list each firing it would have made and what its cooldown suppressed.")

    def add_arguments(self, parser):
        parser.add_argument("trigger", help="trigger id or name")
        parser.add_argument("--days", type=float, default=7.0, help="how far back (default 7)")
        parser.add_argument("--resolution", choices=["raw", "1m"],
                            help="force raw samples (memcached) or 1-minute summaries; default: raw while "
                                 "memcached holds the range")
        parser.add_argument("--samplelog", nargs="+", metavar="PATH",
                            help="read raw samples from these sample-log files or directories (the worker "
                                 "hosts' SAMPLE_LOG_DIR) instead of memcached: raw beyond memcached's retention")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        days = options["days"]
        if not 0 < days <= 3650:
            raise CommandError(f"--days must be more than 0 and at most 3650, not {days}")
        trigger = _find(options["trigger"])
        files = None
        if options["samplelog"]:
            if options["resolution"] == "1m":
                raise CommandError("--resolution: 1m reads the summaries; --samplelog gives raw samples")
            try:
                files = log_files(options["samplelog"])
            except SampleLogError as exc:
                raise CommandError(str(exc)) from None
        end = datetime.now(timezone.utc)
        report = backtest(trigger.pk, end - timedelta(days=days), end, resolution=options["resolution"],
                          samplelogs=files)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(f"{report.trigger}: {report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} UTC, "
                          f"resolution {report.resolution}, {report.evaluations} evaluations")
        self.stdout.write(report.note)
        for firing in report.firings:
            self.stdout.write(f"FIRE {firing['time']}  {_describe(firing['breaches'])}")
        for held in report.suppressed:
            self.stdout.write(f"cooldown (until {held['cooldown_until']}) suppressed {held['time']} – "
                              f"{held['last']} ({held['evaluations']} evaluations)  {_describe(held['breaches'])}")
        self.stdout.write(f"{len(report.firings)} firing(s), {len(report.suppressed)} suppressed by the cooldown")


def _find(text: str) -> Trigger:
    found = Trigger.objects.filter(pk=int(text)) if text.isdigit() else Trigger.objects.filter(name=text)
    triggers = list(found[:2])
    if not triggers:
        raise CommandError(f"trigger: no trigger {text!r}")
    if len(triggers) > 1:
        raise CommandError(f"trigger: several triggers are named {text!r}; give the id")
    return triggers[0]


def _describe(breaches: list[dict]) -> str:
    return "; ".join(f"{b['counter']} on {b['node'] or 'cluster ' + b['aggregation']}: "
                     f"{', '.join(f'{v:g}' if v is not None else '—' for v in b['values'])}" for b in breaches)
