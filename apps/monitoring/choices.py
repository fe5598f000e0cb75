"""Constants shared by every counter source."""
import operator

from django.db import models


class Comparison(models.TextChoices):
    """How a sample is compared with its counter's threshold.

    The seed's meaning of "reaches" is >=; the others let scale-in rules
    ("load below 0.2") be written with the same machinery.
    """

    GE = ">=", "reaches (>=)"
    GT = ">", "exceeds (>)"
    LE = "<=", "at or below (<=)"
    LT = "<", "below (<)"


OPERATORS = {
    Comparison.GE: operator.ge,
    Comparison.GT: operator.gt,
    Comparison.LE: operator.le,
    Comparison.LT: operator.lt,
}


def breaches(value: float, comparison: str, threshold: float) -> bool:
    """True when a sample value breaches the threshold under the comparison."""
    return OPERATORS[Comparison(comparison)](value, threshold)
