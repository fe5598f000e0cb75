"""Fields every counter source shares (SSH, JMX), kept in one abstract model,
with the bounds they must hold.

Validators keep bad numbers out of admin; ``config_error`` tells readers
(pages, the API, /metrics, the dispatcher, the evaluator) that a row got past
them anyway (an UPDATE, a fixture, an older release), so one bad row is shown
as an error on that counter and skipped instead of failing every page that
lists it."""
from __future__ import annotations

import logging
import math

from django.core.exceptions import ValidationError
from django.db import models

from pyscaler.fields import BoundedPositiveIntegerField, bounded

from .choices import Comparison

#: Collection interval bounds: at least a second, at most a day.
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 86400
#: Largest threshold magnitude: any real reading fits, and arithmetic on it stays finite.
MAX_ABS_THRESHOLD = 1e18


def validate_finite(value) -> None:
    """Refuse NaN, infinities and magnitudes past MAX_ABS_THRESHOLD."""
    if value is None:
        return
    if not math.isfinite(value) or abs(value) > MAX_ABS_THRESHOLD:
        raise ValidationError(
            "%(value)s is not a usable threshold: give a finite number between -1e18 and 1e18.",
            params={"value": value},
            code="not_finite",
        )


class CounterBase(models.Model):
    name = models.CharField(
        max_length=100,
        help_text="Short name shown in graphs and alerts, e.g. 'load1'.",
    )
    threshold = models.FloatField(
        validators=[validate_finite],
        help_text="A sample breaches when its value compared with this threshold (by the comparison "
                  "below) holds, e.g. value ≥ threshold.",
    )
    comparison = models.CharField(
        max_length=2,
        choices=Comparison.choices,
        default=Comparison.GE,
    )
    interval_s = BoundedPositiveIntegerField(
        "interval (s)",
        default=60,
        validators=bounded(MIN_INTERVAL_S, MAX_INTERVAL_S),
        help_text="Collection interval in seconds, from 1 to 86400 (a day).",
    )
    unit = models.CharField(max_length=20, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def interval_sound(interval_s) -> bool:
    return isinstance(interval_s, int) and MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S


def config_error(counter) -> str:
    """Why a stored counter cannot be collected or counted ("" when it can)."""
    if not interval_sound(counter.interval_s):
        return f"interval out of range ({counter.interval_s} s; allowed {MIN_INTERVAL_S}..{MAX_INTERVAL_S} s)"
    threshold = counter.threshold
    if threshold is None or not math.isfinite(threshold) or abs(threshold) > MAX_ABS_THRESHOLD:
        return f"threshold is not a finite number ({threshold})"
    if counter.comparison not in Comparison.values:
        return f"unknown comparison {counter.comparison!r} (use {', '.join(Comparison.values)})"
    return ""


_reported: set[tuple] = set()


def report_once(logger: logging.Logger, what: str, row, error: str) -> None:
    """Log a bad row (a counter, a trigger) once per process and error, not on
    every tick that skips it."""
    key = (logger.name, type(row).__name__, row.pk, error)
    if key not in _reported:
        _reported.add(key)
        logger.error("%s skips %s %s (id %s): %s; fix it in admin", what, type(row)._meta.verbose_name, row,
                     row.pk, error)
