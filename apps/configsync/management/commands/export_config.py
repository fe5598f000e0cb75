"""Write the configuration (clusters and everything in them) as YAML or JSON."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.configsync.document import FORMATS, dump, export_document
from apps.configsync.sections import ConfigError


class Command(BaseCommand):
    help = ("Write the configuration as YAML or JSON on standard output: clusters, configured nodes, counters, "
            "JVMs, actions, triggers, by name (never database ids); secrets only as references.")

    def add_arguments(self, parser):
        parser.add_argument("--cluster", action="extend", nargs="+", metavar="NAME",
                            help="export only these clusters (--cluster a b, or repeated); default: every cluster")
        parser.add_argument("--format", choices=FORMATS, default="yaml")

    def handle(self, *args, **opts):
        try:
            text = dump(export_document(opts["cluster"]), opts["format"])
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(text, ending="")
