"""A period's start as epoch seconds, computed by the database.

Reading a million summary rows as ``datetime`` objects spends most of its
time parsing timestamps in Python (a backtest of 7 days of 100 nodes: 4 of its
6.5 s); the replay only needs whole seconds, which every backend can compute
itself. Django's ``Extract`` has no portable "epoch" lookup (PostgreSQL knows
it, SQLite and MariaDB do not), hence one expression per backend here.
"""
from __future__ import annotations

from django.db.models import Func, IntegerField


class Epoch(Func):
    """Whole epoch seconds of a DateTimeField (stored in UTC on every backend
    Django supports with USE_TZ)."""

    output_field = IntegerField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)",
                           **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # '%%%%' survives two substitutions: the template's, then the
        # cursor's (which would take a single '%s' for a placeholder).
        return self.as_sql(compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)",
                           **extra)

    def as_mysql(self, compiler, connection, **extra):
        # TIMESTAMPDIFF on the naive UTC value: UNIX_TIMESTAMP would apply the
        # session's time zone.
        return self.as_sql(compiler, connection,
                           template="TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', %(expressions)s)", **extra)
