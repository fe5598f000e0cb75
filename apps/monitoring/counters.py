"""Fields every counter source shares (SSH, JMX), kept in one abstract model."""
from django.core.validators import MinValueValidator
from django.db import models

from .choices import Comparison


class CounterBase(models.Model):
    name = models.CharField(
        max_length=100,
        help_text="Short name shown in graphs and alerts, e.g. 'load1'.",
    )
    threshold = models.FloatField(
        help_text="A sample breaches when 'value <comparison> threshold' holds.",
    )
    comparison = models.CharField(
        max_length=2,
        choices=Comparison.choices,
        default=Comparison.GE,
    )
    interval_s = models.PositiveIntegerField(
        "interval (s)",
        default=60,
        validators=[MinValueValidator(1)],
        help_text="Collection interval in seconds (at least 1).",
    )
    unit = models.CharField(max_length=20, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
