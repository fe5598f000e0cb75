"""Merging summaries into the tables: one multi-row upsert per chunk, written
for each database's dialect, because Django's ``bulk_create(update_conflicts=…)``
can only overwrite a row with the new values, never add to them.

The merge is the one ``Summary.merge`` does in memory: counts, sums and sums of
squares add up, min and max keep the extreme, and the last value is the one
with the newest stamp. Rows are written sorted by key, so two transactions
merging overlapping batches lock rows in the same order and cannot deadlock.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from django.db import connections

from .summary import SeriesKey, Summary

COLUMNS = ("kind", "node_id", "endpoint_id", "counter_id", "bucket", "cluster_id",
           "count", "min", "max", "sum", "sumsq", "last", "last_stamp")
KEY = COLUMNS[:5]
#: Rows per INSERT (13 parameters each; well under every driver's limit).
CHUNK = 500


def _q(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def _merge_clause(connection, table: str) -> str:
    q = lambda name: _q(connection, name)  # noqa: E731 - local shorthand
    adds = [f"{q(c)} = {table}.{q(c)} + {{new}}.{q(c)}" for c in ("count", "sum", "sumsq")]
    vendor = connection.vendor
    if vendor == "postgresql":
        extreme = {"min": "LEAST", "max": "GREATEST"}
        new = "EXCLUDED"
    elif vendor == "sqlite":
        extreme = {"min": "MIN", "max": "MAX"}
        new = "excluded"
    else:  # MySQL / MariaDB: ON DUPLICATE KEY UPDATE, VALUES(col) is the new row
        return _mysql_merge_clause(connection)
    sets = [a.format(new=new) for a in adds]
    sets += [f"{q(c)} = {fn}({table}.{q(c)}, {new}.{q(c)})" for c, fn in extreme.items()]
    sets.append(f"{q('last')} = CASE WHEN {new}.{q('last_stamp')} >= {table}.{q('last_stamp')} "
                f"THEN {new}.{q('last')} ELSE {table}.{q('last')} END")
    sets.append(f"{q('last_stamp')} = {extreme['max']}({table}.{q('last_stamp')}, {new}.{q('last_stamp')})")
    sets.append(f"{q('cluster_id')} = {new}.{q('cluster_id')}")
    keys = ", ".join(q(c) for c in KEY)
    return f"ON CONFLICT ({keys}) DO UPDATE SET " + ", ".join(sets)


def _mysql_merge_clause(connection) -> str:
    q = lambda name: _q(connection, name)  # noqa: E731 - local shorthand
    # MySQL applies the assignments left to right, later ones seeing earlier
    # results: ``last`` must be decided before ``last_stamp`` changes.
    sets = [f"{q('last')} = IF(VALUES({q('last_stamp')}) >= {q('last_stamp')}, VALUES({q('last')}), {q('last')})",
            f"{q('last_stamp')} = GREATEST({q('last_stamp')}, VALUES({q('last_stamp')}))"]
    sets += [f"{q(c)} = {q(c)} + VALUES({q(c)})" for c in ("count", "sum", "sumsq")]
    sets += [f"{q('min')} = LEAST({q('min')}, VALUES({q('min')}))",
             f"{q('max')} = GREATEST({q('max')}, VALUES({q('max')}))",
             f"{q('cluster_id')} = VALUES({q('cluster_id')})"]
    return "ON DUPLICATE KEY UPDATE " + ", ".join(sets)


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def merge(model, summaries: Mapping[tuple[SeriesKey, int], Summary], clusters: Mapping[int, int],
          using: str) -> int:
    """Merge ``summaries`` (by (series, period start)) into ``model``'s table
    on database ``using``; ``clusters`` maps node id to cluster id (0 when
    unknown). Returns the number of rows written. Call inside a transaction."""
    if not summaries:
        return 0
    connection = connections[using]
    ops = connection.ops
    table = _q(connection, model._meta.db_table)
    alias = " AS t" if connection.vendor == "postgresql" else ""
    target = "t" if alias else table
    head = f"INSERT INTO {table}{alias} ({', '.join(_q(connection, c) for c in COLUMNS)}) VALUES "
    tail = " " + _merge_clause(connection, target)
    row_sql = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    items = sorted(summaries.items())
    if connection.vendor == "postgresql":
        return _merge_arrays(connection, head, tail, items, clusters)
    with connection.cursor() as cursor:
        for start in range(0, len(items), CHUNK):
            chunk = items[start:start + CHUNK]
            params: list = []
            for ((kind, node, endpoint, counter), bucket), s in chunk:
                params += [kind, node, endpoint, counter, ops.adapt_datetimefield_value(_when(bucket)),
                           clusters.get(node, 0), s.count, s.min, s.max, s.sum, s.sumsq, s.last,
                           ops.adapt_datetimefield_value(_when(s.last_stamp))]
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + tail, params)
    return len(items)


#: PostgreSQL types of COLUMNS, for unnest().
PG_TYPES = ("varchar", "bigint", "bigint", "bigint", "timestamptz", "bigint", "bigint", "float8", "float8",
            "float8", "float8", "float8", "timestamptz")


def _merge_arrays(connection, head: str, tail: str, items: list, clusters: Mapping[int, int]) -> int:
    """PostgreSQL: one array per column and ``unnest``: 13 parameters
    whatever the number of rows (thousands of placeholders cost the driver
    more than the database's work)."""
    columns: list[list] = [[] for _ in COLUMNS]
    for ((kind, node, endpoint, counter), bucket), s in items:
        for column, value in zip(columns, (kind, node, endpoint, counter, _when(bucket), clusters.get(node, 0),
                                           s.count, s.min, s.max, s.sum, s.sumsq, s.last, _when(s.last_stamp))):
            column.append(value)
    select = "SELECT * FROM unnest(" + ", ".join(f"%s::{t}[]" for t in PG_TYPES) + ")"
    with connection.cursor() as cursor:
        cursor.execute(head.removesuffix(" VALUES ") + " " + select + tail, columns)
    return len(items)
