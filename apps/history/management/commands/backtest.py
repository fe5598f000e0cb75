"""manage.py backtest TRIGGER --days 7 — which firings a trigger would have made;
manage.py backtest --policy POLICY --days 7 — which sizes a scaling policy would have chosen."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from django.core.management.base import BaseCommand, CommandError

from apps.control.models import Trigger
from apps.control.policy_models import ScalingPolicy
from apps.history.backtest import backtest
from apps.history.logseries import SampleLogError, log_files
from apps.history.management.lookup import find_named
from apps.history.policy_backtest import backtest_policy, policy_days_limit


class Command(BaseCommand):
    help = ("Replay a trigger (id or name) over the recorded history with PyScaler's own evaluator on a "
            "simulated clock, and list each firing it would have made and what its cooldown suppressed.")

    def add_arguments(self, parser):
        parser.add_argument("trigger", nargs="?", help="trigger id or name")
        parser.add_argument("--policy", metavar="POLICY",
                            help="replay this scaling policy (id or name) instead of a trigger, from the "
                                 "1-minute summaries")
        parser.add_argument("--start-size", type=int, metavar="N",
                            help="with --policy: the simulated cluster's size at the start (default: the "
                                 "nodes that reported in the first minute)")
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
        if options["policy"]:
            if options["trigger"]:
                raise CommandError("--policy: give a policy or a trigger, not both")
            for refused in ("samplelog", "resolution"):
                if options[refused]:
                    raise CommandError(f"--{refused}: a policy replays the 1-minute summaries only")
            self._policy(options, days)
            return
        if options["trigger"] is None:
            raise CommandError("trigger: give a trigger (id or name), or --policy")
        if options["start_size"] is not None:
            raise CommandError("--start-size: only with --policy")
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


    def _policy(self, options, days: float) -> None:
        if days > (most := policy_days_limit()):
            raise CommandError(f"--days must be at most {most} for a policy (the minute summaries' retention, "
                               f"HISTORY_MINUTE_RETENTION_DAYS), not {days:g}")
        policy = _find_policy(options["policy"])
        start_size = options["start_size"]
        if start_size is not None and start_size < 0:
            raise CommandError(f"--start-size must be 0 or more, not {start_size}")
        end = datetime.now(timezone.utc)
        try:
            report = backtest_policy(policy.pk, end - timedelta(days=days), end, start_size=start_size)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(f"{report.policy}: {report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} UTC, "
                          f"resolution {report.resolution}, {report.evaluations} evaluations, "
                          f"starting at {report.start_size} node(s)")
        self.stdout.write(report.note)
        for scaling in report.scalings:
            self.stdout.write(f"SCALE {scaling['direction'].upper():3} {scaling['time']}  {scaling['summary']}")
        held = ", ".join(f"{guard} {n}" for guard, n in sorted(report.blocked.items()))
        self.stdout.write(f"{len(report.scalings)} scaling(s); evaluations held back by a guard: {held or 'none'}")


def _find_policy(text: str) -> ScalingPolicy:
    return find_named(ScalingPolicy, text, "policy", "scaling policy")


def _find(text: str) -> Trigger:
    return find_named(Trigger, text, "trigger", "trigger")


def _describe(breaches: list[dict]) -> str:
    return "; ".join(f"{b['counter']} on {b['node'] or 'cluster ' + b['aggregation']}: "
                     f"{', '.join(f'{v:g}' if v is not None else '—' for v in b['values'])}" for b in breaches)
