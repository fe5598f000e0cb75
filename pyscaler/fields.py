"""Model fields shared by the apps."""
from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class BoundedPositiveIntegerField(models.PositiveIntegerField):
    """A PositiveIntegerField whose form field takes its bounds from the
    field's Min/MaxValueValidators. Django's gives forms min=0 whatever the
    validators say, so "-5" and "0" got two different minimum messages and
    the widget allowed 0; here the widget and every message say the same bound."""

    def formfield(self, **kwargs):
        bounds = {}
        for validator in self.validators:
            if isinstance(validator, MinValueValidator):
                bounds["min_value"] = validator.limit_value
            elif isinstance(validator, MaxValueValidator):
                bounds["max_value"] = validator.limit_value
        return super().formfield(**{**bounds, **kwargs})


def bounded(low: int, high: int) -> list:
    """The validators of a number from ``low`` to ``high``."""
    return [MinValueValidator(low), MaxValueValidator(high)]
