"""Remote PyScaler instances this one copies configuration from, and the
record of every copy (dbsync, seed 003)."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from apps.control.validators import validate_absolute_path
from pyscaler.fields import BoundedPositiveIntegerField, bounded
from pyscaler.secretrefs import validate_secret_ref

#: Longest wait for a remote, per connection attempt and per read (seconds).
MAX_TIMEOUT_S = 300


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


class RemoteInstance(models.Model):
    """Another PyScaler whose ``/api/v1/config`` this one pulls."""

    name = models.SlugField(max_length=100, unique=True, help_text="What sync_config and the records call it.")
    base_url = models.CharField(
        "base URL", max_length=500, validators=[URLValidator(schemes=["http", "https"])],
        help_text="e.g. https://staging.example.com (its API is under /api/v1/).",
    )
    token_ref = models.CharField(
        "API token reference", max_length=200, validators=[validate_secret_ref],
        help_text="env:NAME or file:/path holding the remote's API token (a user with control.view_config "
                  "there); never the token itself.",
    )
    clusters = models.TextField(
        blank=True, help_text="Clusters to pull, comma-separated. Empty: every cluster of the remote.",
    )
    excludes = models.TextField(
        blank=True,
        help_text="Patterns of objects never copied nor deleted here, comma-separated: a cluster (web), a "
                  "section of it (web/nodes/*) or one object (web/triggers/high-load).",
    )
    prune = models.BooleanField(
        default=False, help_text="Delete what the pulled clusters hold here and the remote does not.",
    )
    ca_file = models.CharField(
        "CA certificate file", max_length=500, blank=True, validators=[validate_absolute_path],
        help_text="PEM file of the certificate authority trusted for an https remote (e.g. a staging "
                  "instance's own CA). Empty: the system's trusted authorities.",
    )
    timeout_s = BoundedPositiveIntegerField(
        "timeout (s)", default=20, validators=bounded(1, MAX_TIMEOUT_S),
        help_text="Longest wait to connect and between two reads of the answer (1 to 300 s).",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "remote instance"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.base_url and ("?" in self.base_url or "#" in self.base_url):
            raise ValidationError({"base_url": "Give the instance's address alone, without ? or #."})

    @property
    def cluster_list(self) -> list[str]:
        return _names(self.clusters)

    @property
    def exclude_list(self) -> list[str]:
        return _names(self.excludes)


class SyncRecord(models.Model):
    """One pull from a remote: who, when, from where, and the plan applied or the error."""

    remote = models.ForeignKey(RemoteInstance, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="records")
    remote_name = models.CharField(max_length=100)
    url = models.CharField("from", max_length=600)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    by = models.CharField(max_length=200, help_text='Who ran it: "user alice", "command line (root)".')
    started = models.DateTimeField(auto_now_add=True, db_index=True)
    dry_run = models.BooleanField(default=False)
    ok = models.BooleanField(default=False)
    plan = models.TextField(blank=True, help_text="The plan applied (or, for a dry run, shown).")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started", "-pk"]
        verbose_name = "sync record"

    def __str__(self) -> str:
        return f"{self.remote_name} {self.started:%Y-%m-%d %H:%M:%S} ({'ok' if self.ok else 'failed'})"
