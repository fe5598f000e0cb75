"""manage.py import_samplelog FILES… — build summaries from sample logs."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from apps.history.backfill import ImportConflict, import_file


class Command(BaseCommand):
    help = ("Merge sample-log files (samples-<host>.jsonl and their rotated .N copies) into the history "
            "summaries. Idempotent: lines imported before are skipped, so a file may be imported again "
            "(e.g. after it grew).")

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="sample-log files")
        parser.add_argument("--before", help="only samples stamped before this time (ISO 8601, UTC if naive): "
                                             "when history was switched on, so nothing is counted twice")

    def handle(self, *args, **options):
        before = None
        if options["before"]:
            before = parse_datetime(options["before"])
            if before is None:
                raise CommandError(f"--before: {options['before']!r} is not an ISO 8601 date and time")
            if before.tzinfo is None:
                from datetime import timezone

                before = before.replace(tzinfo=timezone.utc)
        paths = [Path(name) for name in options["files"]]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise CommandError(f"not a file: {', '.join(missing)}")
        for path in paths:
            try:
                report = import_file(path, before=before)
            except ImportConflict as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(str(report))
