"""Periods without summaries, filled from the raw samples memcached still holds.

Summaries are merged as samples are collected, so normally every period of a
range has its rows. A period can lack them while memcached still holds its
samples: history was switched on only recently, a summarise task is still
queued (or its worker is lagging), summaries were lost. Without this, a range
straddling raw and summarised data would show a hole there; with it, the
readers of the summaries (the graph API and /api/v1/summaries) fill such
periods from the samples, folded with the same ``Summary`` the summaries are
made of, so count, min, max, average and deviation are what the summary rows
would have held.

The cost is bounded: only periods that start within memcached's retention
(``SAMPLE_RETENTION_S``: older ones have lost samples, a partial figure would
be wrong), only the periods without summaries, newest first, and at most
``HISTORY_RAW_FILL_MAX_KEYS`` sample keys per answer (0 switches the fill
off). A period is read whole or not at all. When memcached cannot be read
the answer stays what the summaries hold and ``error`` says why.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone as dj_timezone

from apps.monitoring.samples import SeriesRef, stamps_between

from .summary import Summary

log = logging.getLogger(__name__)


@dataclass
class RawFill:
    """What the fill did, for the answer (``raw`` in the API)."""

    periods: int = 0  # periods given figures from raw samples (per node where the answer is per node)
    keys_read: int = 0
    capped: bool = False  # missing periods left unread: HISTORY_RAW_FILL_MAX_KEYS reached
    error: str | None = None  # memcached could not be read (wholly or partly)
    #: Periods with a node whose keys could not be asked for (not in the answer).
    lost: set[int] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict:
        return {"periods": self.periods, "keys_read": self.keys_read, "capped": self.capped, "error": self.error}


def raw_horizon(now: datetime) -> int:
    """Epoch seconds of the oldest period start memcached still holds whole."""
    return int((now - timedelta(seconds=int(settings.SAMPLE_RETENTION_S))).timestamp())


def read_raw(wanted: Iterable[tuple[int, Sequence[int]]], refs: Mapping[int, SeriesRef], interval_s: int,
             step_s: int, now: datetime | None = None, store=None,
             max_keys: int | None = None) -> tuple[dict[int, dict[int, Summary]], RawFill]:
    """Period start (epoch s) -> node id -> summary of that node's samples in
    [start, start + step_s), for the ``wanted`` (period, nodes) pairs that lie
    within memcached's retention, newest period first while the keys fit
    ``max_keys``. A node without a sample in a period is absent from it."""
    now = now or dj_timezone.now()
    limit = int(settings.HISTORY_RAW_FILL_MAX_KEYS if max_keys is None else max_keys)
    fill = RawFill()
    out: dict[int, dict[int, Summary]] = {}
    if limit <= 0:  # switched off
        return out, fill
    horizon, newest = raw_horizon(now), int(now.timestamp())
    plan: list[tuple[int, int, list[int], list[str]]] = []  # (period, node, epoch stamps, keys)
    budget = limit
    for period, nodes in sorted(wanted, key=lambda item: -item[0]):
        if period < horizon or period > newest or not nodes:
            continue
        stamps = stamps_between(_utc(period), _utc(min(period + step_s - 1, newest)), interval_s)
        if not stamps:  # no sample falls in it (an interval longer than the step)
            continue
        if len(stamps) * len(nodes) > budget:
            fill.capped = True
            break
        budget -= len(stamps) * len(nodes)
        epochs = [int(s.timestamp()) for s in stamps]
        plan.extend((period, node, epochs, refs[node].sample_keys(stamps)) for node in nodes)
    if not plan:
        return out, fill
    keys = [k for *_, node_keys in plan for k in node_keys]
    fill.keys_read = len(keys)
    from apps.monitoring.store import SampleStore, StoreUnavailable, parse_sample

    try:
        result = (store or SampleStore.from_settings()).read(keys)
    except StoreUnavailable as exc:
        fill.error = f"memcached unavailable ({exc}): periods without summaries are left empty"
        log.warning("history: raw fill skipped: %s", exc)
        return out, fill
    lost = 0
    for period, node, epochs, node_keys in plan:
        if result.unavailable.intersection(node_keys):
            lost += 1  # part of its samples could not be asked for: no figure rather than a wrong one
            fill.lost.add(period)
            continue
        summary = fold(zip(epochs, (parse_sample(result.values.get(key)) for key in node_keys)))
        if summary is not None:
            out.setdefault(period, {})[node] = summary
    if lost:
        fill.error = (f"{len(result.unavailable)} of {len(keys)} sample keys were on memcached servers that are "
                      f"down: {lost} period(s) left empty")
    fill.periods = sum(len(nodes) for nodes in out.values())
    return out, fill


def fold(samples: Iterable[tuple[int, float | None]]) -> Summary | None:
    """One period's samples (epoch stamp, value or None) as a Summary, made as
    apps.history.summary.summarise makes it (values that are not finite left out)."""
    summary = None
    for stamp, value in samples:
        if value is None or not math.isfinite(value):
            continue
        if summary is None:
            summary = Summary.of(value, stamp)
        else:
            summary.add(value, stamp)
    return summary


def fill_per_node(found: dict[int, dict[int, Summary]], refs: Mapping[int, SeriesRef], interval_s: int,
                  periods: Sequence[int], step_s: int, now: datetime | None = None, store=None) -> RawFill:
    """Fill ``found`` (node -> period -> summary, as read_periods answers) in
    place: each node's periods of ``periods`` without a summary, from raw."""
    wanted = [(p, [node for node in refs if p not in found.get(node, {})]) for p in periods]
    raw, fill = read_raw(wanted, refs, interval_s, step_s, now, store)
    for period, nodes in raw.items():
        for node, summary in nodes.items():
            found.setdefault(node, {})[period] = summary
    return fill


def fill_combined(found: dict[int, Summary], refs: Mapping[int, SeriesRef], interval_s: int,
                  periods: Sequence[int], step_s: int, now: datetime | None = None,
                  store=None) -> tuple[RawFill, dict[int, int]]:
    """Fill ``found`` (period -> the nodes' merged summary, as read_combined
    answers) in place: each period of ``periods`` without any summary row,
    from all nodes' raw samples. Also returns, per filled period, how many
    nodes had samples in it."""
    nodes = list(refs)
    raw, fill = read_raw([(p, nodes) for p in periods if p not in found], refs, interval_s, step_s, now, store)
    with_samples = {}
    for period in fill.lost:  # a node's samples unreadable: the cluster's figure would be partial
        raw.pop(period, None)
    for period, per_node in raw.items():
        merged = None
        for summary in per_node.values():
            if merged is None:
                merged = Summary(**vars(summary))
            else:
                merged.merge(summary)
        found[period] = merged
        with_samples[period] = len(per_node)
    fill.periods = len(raw)
    return fill, with_samples


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)

