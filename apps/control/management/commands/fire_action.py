"""python manage.py fire_action <action-or-trigger> --cluster NAME [--node NAME] [--user NAME] [--wait]

Fires an action or a trigger's chain by hand, exactly as the console and the
evaluator do (same execution record, same worker queue), and records who
fired it.
"""
from __future__ import annotations

import getpass
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.actions.models import Action
from apps.control import chain
from apps.control.choices import ExecutionStatus
from apps.control.executions import FiringError, fire_action, fire_trigger
from apps.control.models import Cluster, Execution, Node, Trigger

PREFIXES = ("action:", "trigger:")


class Command(BaseCommand):
    help = "Fire an action or a trigger's chain by hand; prints the execution id."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "name", help="action or trigger name; 'action:NAME' or 'trigger:NAME' if both exist"
        )
        parser.add_argument("--cluster", required=True, help="the cluster's name")
        parser.add_argument("--node", help="target node's name (for LocalScript, OSConfiguration, ...)")
        parser.add_argument("--user", help="fire as this PyScaler user (recorded in the history)")
        parser.add_argument("--wait", action="store_true",
                            help="wait until the execution finishes; exit status 1 if it failed")
        parser.add_argument("--wait-timeout", type=float, default=None,
                            help="give up waiting after this many seconds "
                                 "(default: the steps' timeouts + 60)")
        parser.add_argument("--inline", action="store_true",
                            help="run the steps in this process instead of on a worker (diagnosis)")

    def handle(self, *args, **opts) -> None:
        cluster = self._cluster(opts["cluster"])
        target = self._node(cluster, opts["node"]) if opts["node"] else None
        user = self._user(opts["user"]) if opts["user"] else None
        fired_by = f"user {user.get_username()}" if user else f"command line ({_os_user()})"
        what = self._resolve(cluster, opts["name"])
        try:
            if isinstance(what, Trigger):
                execution = fire_trigger(what, reasons={"manual": True, "via": "command line"}, fired_by_user=user,
                                         fired_by=fired_by, target_node=target, enqueue=not opts["inline"])
            else:
                execution = fire_action(what, cluster=cluster, target_node=target, fired_by_user=user,
                                        fired_by=fired_by, reasons={"manual": True, "via": "command line"},
                                        enqueue=not opts["inline"])
        except FiringError as exc:
            raise CommandError(str(exc)) from None
        kind = "trigger" if isinstance(what, Trigger) else "action"
        self.stdout.write(f"execution {execution.pk}: {kind} {what.name} on {cluster.name} "
                          f"fired by {execution.fired_by} ({execution.get_status_display()})")
        if opts["inline"] and execution.status == ExecutionStatus.PENDING:
            execution = chain.run_inline(execution)
        if opts["wait"] or opts["inline"]:
            execution = self._wait(execution, opts["wait_timeout"])
            self._report(execution)
            if execution.status != ExecutionStatus.SUCCEEDED:
                raise CommandError(f"execution {execution.pk} {execution.get_status_display()}")

    # -- lookups (each error names the argument and what exists) -----------

    def _cluster(self, name: str) -> Cluster:
        try:
            return Cluster.objects.get(name=name)
        except Cluster.DoesNotExist:
            known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"--cluster: no cluster named {name!r} (clusters: {known})") from None

    def _node(self, cluster: Cluster, name: str) -> Node:
        try:
            return cluster.nodes.get(name=name)
        except Node.DoesNotExist:
            known = ", ".join(cluster.nodes.values_list("name", flat=True)) or "none"
            raise CommandError(
                f"--node: no node named {name!r} in cluster {cluster.name} (nodes: {known})"
            ) from None

    def _user(self, username: str):
        model = get_user_model()
        try:
            return model.objects.get(**{model.USERNAME_FIELD: username})
        except model.DoesNotExist:
            raise CommandError(f"--user: no user named {username!r}") from None

    def _resolve(self, cluster: Cluster, name: str) -> Action | Trigger:
        wanted = None
        for prefix in PREFIXES:
            if name.startswith(prefix):
                wanted, name = prefix[:-1], name[len(prefix):]
        action = cluster.actions.filter(name=name).first() if wanted in (None, "action") else None
        trigger = cluster.triggers.filter(name=name).first() if wanted in (None, "trigger") else None
        if action and trigger:
            raise CommandError(
                f"name: {name!r} is both an action and a trigger of cluster {cluster.name}; "
                f"say 'action:{name}' or 'trigger:{name}'"
            )
        if action or trigger:
            return action or trigger
        kinds = {"action": "action", "trigger": "trigger"}.get(wanted or "", "action or trigger")
        actions = ", ".join(cluster.actions.values_list("name", flat=True)) or "none"
        triggers = ", ".join(cluster.triggers.values_list("name", flat=True)) or "none"
        raise CommandError(
            f"name: no {kinds} named {name!r} in cluster {cluster.name} "
            f"(actions: {actions}; triggers: {triggers})"
        )

    # -- waiting --------------------------------------------------------------

    def _wait(self, execution: Execution, timeout: float | None) -> Execution:
        if timeout is None:
            timeout = sum(execution.steps.values_list("timeout_s", flat=True)) + 60
        deadline = time.monotonic() + timeout
        seen: dict[int, str] = {}
        while True:
            execution.refresh_from_db()
            for step in execution.steps.order_by("position"):
                if seen.get(step.pk) != step.status:
                    seen[step.pk] = step.status
                    self.stdout.write(f"  step {step.position} {step.action_name}: {step.status}")
            if execution.is_finished:
                return execution
            if time.monotonic() > deadline:
                raise CommandError(
                    f"execution {execution.pk} still {execution.status} after {timeout:.0f} s; is a worker "
                    "consuming the 'actions' queue? (it keeps running; see the admin's executions)"
                )
            time.sleep(0.25)

    def _report(self, execution: Execution) -> None:
        self.stdout.write(f"execution {execution.pk} {execution.get_status_display()}; cluster size "
                          f"{execution.size_before} -> {execution.size_after}")
        for step in execution.steps.order_by("position"):
            if step.error:
                self.stdout.write(f"  step {step.position} {step.action_name} error: {step.error}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (containers)
        return "unknown"
