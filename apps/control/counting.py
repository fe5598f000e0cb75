"""When a trigger starts counting: the moment it is created, enabled again,
or its counters change (``Trigger.counting_since``).

Samples stamped before that moment never count (breach.reading_start). A
trigger saved a second ago must not fire from samples collected before it
existed, nor a trigger enabled again from the breaches it saw before it was
disabled, nor from a counter's history once the counter is added: each of
them fires only after ``timing`` minutes of its own.
"""
from __future__ import annotations

from django.apps import apps as django_apps
from django.db.models.signals import m2m_changed
from django.utils import timezone

_CHANGES = {"post_add", "post_remove", "post_clear"}


def restart_on_save(trigger, save_kwargs: dict) -> None:
    """Called by Trigger.save before writing: a new trigger, or one going
    from disabled to enabled, counts from now."""
    restart = trigger._state.adding
    if not restart and trigger.enabled and trigger.pk is not None:
        restart = type(trigger).objects.filter(pk=trigger.pk, enabled=False).exists()
    if not restart:
        return
    trigger.counting_since = timezone.now()
    fields = save_kwargs.get("update_fields")
    if fields is not None:
        save_kwargs["update_fields"] = {*fields, "counting_since"}


def _counters_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """A trigger's counters changed, from either side of the relation: its
    counting restarts. (A counter's triggers all removed at once, a reverse
    clear, names no trigger; those triggers lost a counter, and counting on
    fewer counters cannot fire from samples it would not have counted.)"""
    Trigger = django_apps.get_model("control", "Trigger")  # noqa: N806 - models import this module

    if action not in _CHANGES:
        return
    if isinstance(instance, Trigger):
        ids = {instance.pk}
    elif model is Trigger:
        ids = set(pk_set or ())
    else:
        return
    if ids:
        Trigger.objects.filter(pk__in=ids).update(counting_since=timezone.now())


def connect() -> None:
    m2m_changed.connect(_counters_changed, dispatch_uid="pyscaler-trigger-counting")
