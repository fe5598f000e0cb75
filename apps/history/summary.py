"""Summaries in memory: what a batch of samples adds to each period.

``Summary`` is the mergeable record (count, min, max, sum, sum of squares,
last value and its stamp); ``summarise`` folds samples into one per (series,
period) for each resolution. Merging is associative and commutative, which is
what lets batches arrive in any order and periods be combined into longer
ones (an hour from minutes, a day from hours) without the samples.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

#: The stored resolutions (seconds) and the model each lives in.
RESOLUTIONS = (60, 3600)


@dataclass
class Summary:
    count: int
    min: float
    max: float
    sum: float
    sumsq: float
    last: float
    last_stamp: int  # epoch seconds of the last value's sample

    @classmethod
    def of(cls, value: float, stamp: int) -> Summary:
        return cls(1, value, value, value, value * value, value, stamp)

    def add(self, value: float, stamp: int) -> None:
        self.count += 1
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.sum += value
        self.sumsq += value * value
        if stamp >= self.last_stamp:
            self.last, self.last_stamp = value, stamp

    def merge(self, other: Summary) -> None:
        self.count += other.count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sum += other.sum
        self.sumsq += other.sumsq
        if other.last_stamp >= self.last_stamp:
            self.last, self.last_stamp = other.last, other.last_stamp

    @property
    def avg(self) -> float:
        return self.sum / self.count

    @property
    def stddev(self) -> float:
        """Population standard deviation (0 for one sample); rounding can make
        the variance a hair below 0, which is read as 0."""
        mean = self.avg
        return math.sqrt(max(0.0, self.sumsq / self.count - mean * mean))


#: A series as the tables key it: (kind, node id, endpoint id or 0, counter id).
SeriesKey = tuple[str, int, int, int]
#: A sample as the feed carries it: (kind, node, endpoint or 0, counter, epoch stamp, value).
Row = tuple[str, int, int, int, int, float]


def summarise(rows: Iterable[Row]) -> dict[int, dict[tuple[SeriesKey, int], Summary]]:
    """Per resolution, per (series, period start in epoch seconds): the
    summary of ``rows``. Values that are not finite (NaN, infinities) are
    left out: they would poison every sum they enter."""
    out: dict[int, dict[tuple[SeriesKey, int], Summary]] = {r: {} for r in RESOLUTIONS}
    for kind, node, endpoint, counter, stamp, value in rows:
        if not math.isfinite(value):
            continue
        series = (kind, node, endpoint, counter)
        for resolution, table in out.items():
            key = (series, stamp - stamp % resolution)
            held = table.get(key)
            if held is None:
                table[key] = Summary.of(value, stamp)
            else:
                held.add(value, stamp)
    return out
