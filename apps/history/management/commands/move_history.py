"""manage.py move_history CLUSTER TARGET — move a cluster's history to another database."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.control.models import Cluster
from apps.history.management.lookup import find_named
from apps.history.move import MoveError, move


class Command(BaseCommand):
    help = ("Move one cluster's summaries to another HISTORY_DATABASES alias: freeze, copy, verify, switch, "
            "delete. Safe to interrupt: run it again to resume.")

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="cluster name or id")
        parser.add_argument("target", help="the database alias to move to")

    def handle(self, *args, **options):
        cluster = find_named(Cluster, options["cluster"], "cluster", "cluster")
        try:
            move(cluster.pk, options["target"], say=self.stdout.write)
        except MoveError as exc:
            raise CommandError(str(exc)) from None
