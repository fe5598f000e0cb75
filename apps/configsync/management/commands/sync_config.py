"""Pull a remote PyScaler's configuration: print the plan and apply it."""
from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from apps.configsync.models import RemoteInstance
from apps.configsync.sync import sync


class Command(BaseCommand):
    help = ("Fetch the configuration of a remote instance (admin: Remote instances) from its /api/v1/config, "
            "print the plan and apply it in one transaction; every attempt is recorded.")

    def add_arguments(self, parser):
        parser.add_argument("remote", help="the remote instance's name")
        parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")

    def handle(self, *args, **opts):
        try:
            remote = RemoteInstance.objects.get(name=opts["remote"])
        except RemoteInstance.DoesNotExist:
            known = ", ".join(RemoteInstance.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no remote instance named {opts['remote']!r} (known: {known})") from None
        result = sync(remote, dry_run=opts["dry_run"], by=f"command line ({getpass.getuser()})")
        if not result.ok:
            raise CommandError(f"sync from {remote.name} failed: {result.record.error}")
        self.stdout.write(result.record.plan, ending="")
        if opts["dry_run"]:
            self.stdout.write("dry run: nothing changed")
