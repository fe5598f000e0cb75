"""Models common to every counter source."""
from __future__ import annotations

from django.db import models


class CollectionHealth(models.Model):
    """How collection from one place is going: a node's SSH, a node's JVM, or
    one counter on it. Written by apps.monitoring.health (see there why in
    the database and how rarely)."""

    kind = models.CharField(max_length=20, help_text="The counter source (apps.monitoring.sources).")
    node = models.ForeignKey("control.Node", on_delete=models.CASCADE, related_name="collection_health")
    # 0 instead of NULL: NULLs never collide in a unique constraint, so rows
    # with "no JVM" / "no counter" could otherwise be duplicated.
    jvm_id = models.PositiveBigIntegerField(
        default=0, help_text="The source's endpoint on the node (a JMX counter's JVM); 0: the node itself."
    )
    counter_id = models.PositiveBigIntegerField(
        default=0, help_text="0: the node's SSH or the JVM as a whole, not one counter."
    )
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_output = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    written_at = models.DateTimeField(help_text="When this row was last written (writes are throttled).")

    class Meta:
        verbose_name = "collection health"
        verbose_name_plural = "collection health"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "node", "jvm_id", "counter_id"], name="collectionhealth_unique_scope"
            )
        ]

    def __str__(self) -> str:
        scope = f"{self.kind} node {self.node_id}"
        if self.jvm_id:
            scope += f" jvm {self.jvm_id}"
        if self.counter_id:
            scope += f" counter {self.counter_id}"
        return f"{scope}: {'failing' if self.consecutive_failures else 'ok'}"
