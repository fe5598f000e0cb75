"""The sections of PyScaler's own configuration, in dependency order: nodes,
SSH counters, JVMs, JMX counters, actions, triggers. (Scaling policies will be
one more section after triggers.)"""
from __future__ import annotations

from typing import Any

from apps.control.forms import TriggerForm, with_source_fields
from apps.monitoring import sources

from . import sections
from .sections import ConfigError, Section, error_text

#: What a counter's breaches depend on: a change restarts its triggers' counting.
COUNTER_SEMANTICS = ("threshold", "comparison", "interval_s")
#: What a trigger's firing depends on besides its counters.
TRIGGER_SEMANTICS = ("timing_minutes", "aggregation", "missing_data", "counters")


class NodeSection(Section):
    """Nodes an admin configured. Nodes PyScaler launched
    (``launched_by_pyscaler``) are runtime state: never exported, never
    pruned. A node's state and collection switch are operators' (console)."""

    key = "nodes"
    label = "node"
    model_label = "control.Node"
    fields = ("address", "ssh_port", "ssh_user", "ssh_key_path", "protected", "ec2_instance_id")

    def rows(self, cluster):
        return super().rows(cluster).filter(launched_by_pyscaler=False)

    def export(self, obj) -> dict[str, Any]:
        item = super().export(obj)
        item["ec2_instance_id"] = item["ec2_instance_id"] or ""
        return item

    def defaults(self) -> dict[str, Any]:
        return {**super().defaults(), "ec2_instance_id": ""}


class CounterSection(Section):
    """Counters of one counter source; triggers name them under that
    source's kind (the registry's, apps/monitoring/sources.py)."""

    fields_common = ("threshold", "comparison", "interval_s", "unit", "enabled")
    semantic_fields = COUNTER_SEMANTICS

    @property
    def counter_kind(self) -> str:  # type: ignore[override]
        return sources.of_model(self.model).kind

    def triggers_of(self, obj):
        # Every source's counters reach their triggers as ``triggers``
        # (related_name of Trigger's fields, or the source's own field).
        return list(obj.triggers.values_list("pk", flat=True))


class SSHCounterSection(CounterSection):
    key = "ssh_counters"
    label = "SSH counter"
    model_label = "ssh.SSHCounter"
    fields = ("command", *CounterSection.fields_common)


class JVMSection(Section):
    key = "jvms"
    label = "JVM"
    model_label = "jmx.JVM"
    fields = ("jmx_port", "username", "password_ref", "tls")


class JMXCounterSection(CounterSection):
    key = "jmx_counters"
    label = "JMX counter"
    model_label = "jmx.JMXCounter"
    cluster_field = None
    key_fields = ("jvm", "name")
    refs = {"jvm": "jvms"}
    fields = ("mbean", "attribute", "composite_key", *CounterSection.fields_common)

    def rows(self, cluster):
        return self.model.objects.filter(jvm__cluster=cluster).select_related("jvm")


class ActionSection(Section):
    """Actions; their kind validates the parameters (Action.clean_fields)."""

    key = "actions"
    label = "action"
    model_label = "actions.Action"
    fields = ("kind", "params", "timeout_s", "description")


def counter_ref(section: Section, key: tuple) -> Any:
    """How a trigger names a counter: its name, or {jvm:, name:} for a
    counter named within an endpoint."""
    return key[0] if len(key) == 1 else dict(zip(section.key_fields, key))


def ref_key(section: Section, ref: Any, where: str) -> tuple:
    if isinstance(ref, str) and len(section.key_fields) == 1:
        return (ref,)
    if isinstance(ref, dict) and set(ref) == set(section.key_fields):
        return tuple(str(ref[name]) for name in section.key_fields)
    shape = "a name" if len(section.key_fields) == 1 else "{" + ", ".join(f"{n}: …" for n in section.key_fields) + "}"
    raise ConfigError(f"{where}, field counters.{section.counter_kind}: {ref!r} is not a {section.label} "
                      f"reference ({shape})")


class TriggerSection(Section):
    """Triggers: their counters by source kind, their actions in chain order.
    Validated by admin's TriggerForm (counters of the trigger's cluster, at
    least one counter) plus admin's step rule (at least one action)."""

    key = "triggers"
    label = "trigger"
    model_label = "control.Trigger"
    fields = ("description", "enabled", "dry_run", "timing_minutes", "aggregation", "missing_data",
              "cooldown_s", "counters", "actions")
    semantic_fields = TRIGGER_SEMANTICS

    def export(self, obj) -> dict[str, Any]:
        item = {name: sections.plain(getattr(obj, name)) for name in self.all_fields[:-2]}
        counters = {}
        for section in sections.counter_sections():
            accessor = getattr(obj, sources.get(section.counter_kind).trigger_accessor)
            keys = sorted(section.natural_key(section.export(c)) for c in accessor.all())
            counters[section.counter_kind] = [counter_ref(section, k) for k in keys]
        item["counters"] = counters
        item["actions"] = [a.name for a in obj.ordered_actions()]
        return item

    def defaults(self) -> dict[str, Any]:
        plain = {n: sections.plain(self.model._meta.get_field(n).get_default()) for n in self.fields[:-2]}
        return {**plain, "counters": {}, "actions": []}

    def normalize(self, cluster_name: str, item: Any) -> dict[str, Any]:
        item = super().normalize(cluster_name, item)
        where = self.title(cluster_name, self.natural_key(item))
        counters = item["counters"] or {}
        kinds = {s.counter_kind: s for s in sections.counter_sections()}
        if not isinstance(counters, dict) or set(counters) - set(kinds):
            raise ConfigError(f"{where}, field counters: a mapping of counter kinds ({', '.join(kinds)}) "
                              f"to lists, not {counters!r}")
        normal = {}
        for kind, section in kinds.items():
            refs = counters.get(kind) or []
            if not isinstance(refs, list):
                raise ConfigError(f"{where}, field counters.{kind}: a list, not {refs!r}")
            keys = sorted({ref_key(section, ref, where) for ref in refs})
            normal[kind] = [counter_ref(section, k) for k in keys]
        item["counters"] = normal
        if not isinstance(item["actions"], list) or not all(isinstance(a, str) for a in item["actions"]):
            raise ConfigError(f"{where}, field actions: a list of action names, not {item['actions']!r}")
        return item

    def _counter_ids(self, cluster, item, where) -> dict[str, list[int]]:
        ids = {}
        for section in sections.counter_sections():
            accessor = sources.get(section.counter_kind).trigger_accessor
            ids[accessor] = []
            for ref in item["counters"].get(section.counter_kind, []):
                key = ref_key(section, ref, where)
                counter = section.lookup(cluster, key)
                if counter is None:
                    raise ConfigError(f"{where}, field counters.{section.counter_kind}: unknown {section.label} "
                                      f"{'/'.join(key)!r} in cluster {cluster.name}")
                ids[accessor].append(counter.pk)
        return ids

    def _actions(self, cluster, item, where) -> list:
        actions = []
        section = sections.get("actions")
        for name in item["actions"]:
            action = section.lookup(cluster, (name,))
            if action is None:
                raise ConfigError(f"{where}, field actions: unknown action {name!r} in cluster {cluster.name}")
            actions.append(action)
        if not actions:
            raise ConfigError(f"{where}, field actions: A trigger needs at least one action step.")
        return actions

    def write(self, cluster, obj, item, where):
        form_class = with_source_fields(TriggerForm)
        data: dict[str, Any] = {"cluster": cluster.pk, "name": item["name"]}
        data.update({name: item[name] for name in self.fields[:-2]})
        # Counters of sources without a section (none in production) stay as they are.
        for field in form_class.base_fields:
            if field not in data and obj is not None and hasattr(obj, field):
                data[field] = list(getattr(obj, field).values_list("pk", flat=True))
        data.update(self._counter_ids(cluster, item, where))
        form = form_class(data=data, instance=obj)
        if not form.is_valid():
            raise ConfigError(f"{where}: {error_text(form_errors(form))}")
        trigger = form.save()
        self._write_steps(trigger, self._actions(cluster, item, where), where)
        return trigger

    def _write_steps(self, trigger, actions: list, where: str) -> None:
        from apps.control.models import TriggerAction

        if [a.pk for a in trigger.ordered_actions()] == [a.pk for a in actions]:
            return
        trigger.steps.all().delete()
        for position, action in enumerate(actions, start=1):
            step = TriggerAction(trigger=trigger, action=action, position=position)
            self.validate(step, where)
            step.save()


def form_errors(form):
    from django.core.exceptions import ValidationError

    return ValidationError({field: [str(e) for e in errors] for field, errors in form.errors.items()})


SECTIONS = [NodeSection(), SSHCounterSection(), JVMSection(), JMXCounterSection(), ActionSection(),
            TriggerSection()]
