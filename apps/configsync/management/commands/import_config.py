"""Apply a configuration file: print the plan, then apply it in one transaction."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.configsync.importing import import_text
from apps.configsync.sections import ConfigError


class Command(BaseCommand):
    help = ("Import a configuration file (YAML or JSON, as export_config writes): print the plan "
            "(create / update field: old → new / delete) and apply it all or nothing.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the file ('-' for standard input)")
        parser.add_argument("--dry-run", action="store_true", help="check and print the plan, change nothing")
        parser.add_argument("--prune", action="store_true",
                            help="delete what the file's clusters (or, for a whole export, the database) "
                                 "hold and the file does not")

    def handle(self, *args, **opts):
        text = self._read(opts["file"])
        try:
            plan = import_text(text, prune=opts["prune"], dry_run=opts["dry_run"])
        except ConfigError as exc:
            raise CommandError(f"import refused, nothing changed: {exc}") from None
        self.stdout.write(plan.text(), ending="")
        if opts["dry_run"]:
            self.stdout.write("dry run: nothing changed")

    def _read(self, name: str) -> str:
        import sys

        if name == "-":
            return sys.stdin.read()
        try:
            return Path(name).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {name}: {exc}") from None
