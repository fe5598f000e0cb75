"""Persisted summaries of every series, per minute and per hour.

A row holds what the samples of one series in one period add up to: count,
min, max, sum and sum of squares (so the average and the standard deviation
of any longer period can be computed by adding rows), and the last value with
its stamp. Rows are only ever merged into (apps.history.upsert), never
rewritten.

Series are named by plain ids, not foreign keys: history outlives the node or
counter it describes, and may live on another database server
(HISTORY_DATABASES) where no configuration row exists. ``endpoint_id`` is the
series' endpoint (a JMX counter's JVM) or 0, so the key has no NULL in it.

On PostgreSQL both tables are partitioned by ``bucket`` (the migration creates
them with raw SQL; apps.history.partitions keeps partitions ahead and drops
expired ones); elsewhere they are plain tables.
"""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.monitoring.sources import MAX_KIND_LENGTH


class SummaryBase(models.Model):
    pk = models.CompositePrimaryKey("kind", "node_id", "endpoint_id", "counter_id", "bucket")
    kind = models.CharField(
        max_length=MAX_KIND_LENGTH,
    )
    node_id = models.BigIntegerField()
    endpoint_id = models.BigIntegerField()
    counter_id = models.BigIntegerField()
    bucket = models.DateTimeField(
        help_text="Start of the period (UTC).",
    )
    cluster_id = models.BigIntegerField()
    count = models.BigIntegerField()
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    sumsq = models.FloatField()
    last = models.FloatField()
    last_stamp = models.DateTimeField()

    #: Period length in seconds (set by each concrete model).
    RESOLUTION_S = 0

    class Meta:
        abstract = True


class MinuteSummary(SummaryBase):
    RESOLUTION_S = 60

    class Meta:
        indexes = [models.Index(fields=["cluster_id", "bucket"], name="history_minute_cluster_idx")]


class HourSummary(SummaryBase):
    RESOLUTION_S = 3600

    class Meta:
        indexes = [models.Index(fields=["cluster_id", "bucket"], name="history_hour_cluster_idx")]


class AppliedBatch(models.Model):
    """A claim: one cluster's rows of one batch of samples have been merged
    into this database's summaries. It is written in the same transaction as
    the merge, so a batch delivered twice (a redelivered task, a deferred
    part) merges each cluster's rows once (apps.history.ingest).

    A claim names a (batch, cluster) pair, not a batch: a batch's clusters
    may live on different databases and be merged in separate transactions,
    one of which may fail; and ``manage.py move_history`` carries exactly the
    moved cluster's claims to the target (apps.history.move). The key stays
    one string column, ``"<batch>@<cluster>"`` (a plain primary key is the
    cheapest unique claim on every backend and needed no table rebuild);
    ``cluster_id`` repeats the cluster for the move's filter. Claims written
    before per-cluster claims existed have the plain batch id and no
    ``cluster_id``: they cover the batch's every cluster on this database."""

    batch_id = models.CharField(
        max_length=100,
        primary_key=True,
        help_text="\"<batch id>@<cluster id>\"; a plain batch id for a claim written before 0003.",
    )
    cluster_id = models.BigIntegerField(
        null=True,
        blank=True,
        db_index=True,
        help_text="The cluster whose rows were merged; empty for a claim written before 0003 (all of them).",
    )
    applied_at = models.DateTimeField(
        default=timezone.now,
        db_index=True,
        help_text="When the rows were merged; a move keeps it, so maintenance forgets a copied claim on time.",
    )
    samples = models.PositiveIntegerField()


class ImportedLog(models.Model):
    """How far a sample-log file was imported (manage.py import_samplelog).

    A file is known by its first line (a rotated file keeps it under its new
    name); ``lines`` lines of it have been merged, so a second import of the
    same file, or of the file once it has grown, merges only what is new."""

    identity = models.CharField(
        max_length=64,
        primary_key=True,
    )
    name = models.CharField(
        max_length=255,
    )
    lines = models.BigIntegerField(
        default=0,
    )
    updated_at = models.DateTimeField(
        auto_now=True,
    )


class Placement(models.TextChoices):
    PLACED = "placed", "placed"
    FROZEN = "frozen", "frozen: being copied to the target"
    CLEANING = "cleaning", "switched: the old copy is being deleted"


class ClusterPlacement(models.Model):
    """Which history database holds a cluster's summaries (HISTORY_DATABASES).

    Lives in the configuration database. Recorded when the cluster's first
    summaries are written, on the first alias of HISTORY_DATABASES at that
    time, so adding a server later never moves old data; only ``manage.py
    move_history`` does (``state``, ``target`` and ``source`` are its resumable
    progress)."""

    cluster_id = models.BigIntegerField(
        primary_key=True,
    )
    alias = models.CharField(
        max_length=64,
    )
    state = models.CharField(
        max_length=10,
        choices=Placement.choices,
        default=Placement.PLACED,
    )
    target = models.CharField(
        max_length=64,
        blank=True,
    )
    source = models.CharField(
        max_length=64,
        blank=True,
    )
    updated_at = models.DateTimeField(
        auto_now=True,
    )
