from django.db import models

from apps.monitoring.counters import CounterBase


class ConstantCounter(CounterBase):
    """A counter whose every sample is ``value``, on every node of its cluster."""

    cluster = models.ForeignKey("control.Cluster", on_delete=models.PROTECT, related_name="constant_counters")
    value = models.FloatField()
    # The source's own link to triggers: control.Trigger names no source.
    triggers = models.ManyToManyField("control.Trigger", blank=True, related_name="constant_counters")

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name}"
