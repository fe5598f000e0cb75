"""Why an execution fired, in sentences and small charts — never a JSON dump.

An execution records its reasons as JSON (Execution.reasons). Their shape
depends on who fired and on the release that recorded them:

- the evaluator: trigger, cluster, evaluated_at, timing_minutes, aggregation,
  missing_data, dry_run, cooldown_s (newer records) and ``breaches``, one per
  series that reached: counter, node (None for a cluster aggregate),
  aggregation, nodes, comparison, threshold, interval_s, count, needed and
  ``values`` [{"stamp", "value"}];
- older and hand-written records: the flat ``counter``/``node``/``values``
  (plain numbers) without ``breaches``;
- a person (apps/web/firing.py): {"manual": true, "fired", "user", "via",
  "node", "node_id"}; the command line: {"manual": true, "via"}; an action
  fired by hand from the command line of an older release: {}.

``explain`` reads any of these — and anything else: a field that is missing
or of the wrong type is left out of the words, a record that is not an
object gets one sentence saying so. The console, the API (``why_text``) and
Django admin all show what it returns. The sentence and chart helpers it
uses are in wording.py, for a scaling policy's decision record to share.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import wording
from .wording import ThresholdChart

logger = logging.getLogger(__name__)

AGGREGATIONS = {"avg": "cluster average", "max": "cluster maximum"}
MISSING_DATA = {"breaching": "counted as breaching", "not_breaching": "counted as not breaching",
                "ignore": "ignored (neither breaching nor resetting the count)"}
VIA = {"console": "from the console", "api": "through the data API", "command line": "from the command line"}
WOULD_FIRE, BLOCKED = "would_fire", "blocked"


@dataclass(frozen=True)
class Breach:
    """One series that reached its threshold, as far as the record tells."""

    counter: str
    node: str | None
    aggregation: str = ""
    nodes: int | None = None
    comparison: str = ""
    threshold: float | None = None
    count: int | None = None
    needed: int | None = None
    points: tuple[tuple[datetime | None, float | None], ...] = ()

    @property
    def subject(self) -> str:
        """ "load1 on node web-3", "load1 (cluster average of 3 nodes)", "load1"."""
        if self.node:
            return f"{self.counter} on node {self.node}"
        if self.aggregation in AGGREGATIONS:
            of = f" of {wording.plural(self.nodes, 'node')}" if self.nodes else ""
            return f"{self.counter} ({AGGREGATIONS[self.aggregation]}{of})"
        return self.counter

    @property
    def series_label(self) -> str:
        """The chart's name for this series: the node, or the aggregate."""
        if self.node:
            return self.node
        return AGGREGATIONS.get(self.aggregation, self.counter)

    def sentence(self) -> str:
        """load1 on node web-3 was ≥ 1.5 for 6 consecutive samples (1.6, …)
        from 2026-11-30 14:02:10 to 14:03:00 UTC"""
        if self.threshold is not None:
            words = [f"{self.subject} was {wording.sign(self.comparison)} {wording.number(self.threshold)}"]
        else:
            words = [f"{self.subject} breached its threshold"]
        if self.count:
            words.append(f"for {self.count} consecutive samples" if self.count > 1 else "for 1 sample")
            if self.needed and self.needed != self.count:
                words.append(f"({self.needed} needed)")
        if self.points:
            words.append(f"({wording.values_text(v for _, v in self.points)})")
        stamps = [t for t, _ in self.points if t is not None]
        if stamps:
            words.append(wording.span_text(min(stamps), max(stamps)))
        return " ".join(words)


@dataclass
class Facts:
    """What the execution row knows besides its reasons (all optional)."""

    status: str = ""
    automatic: bool | None = None
    fired_by: str = ""
    trigger: str = ""
    action: str = ""
    target_node: str = ""
    log: str = ""


@dataclass
class Explanation:
    sentences: list[str] = field(default_factory=list)
    charts: list[ThresholdChart] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    def chart_data(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.charts]


# ---------------------------------------------------------------------------
# Reading a record
# ---------------------------------------------------------------------------
def _text(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


def _count(raw: Any) -> int | None:
    value = wording.as_float(raw)
    return int(value) if value is not None and value >= 0 and value.is_integer() else None


def _points(raw: Any) -> tuple[tuple[datetime | None, float | None], ...]:
    """[{"stamp", "value"}, ...] or plain numbers (older records)."""
    if not isinstance(raw, list):
        return ()
    points = []
    for item in raw:
        if isinstance(item, Mapping):
            points.append((wording.parse_moment(item.get("stamp")), wording.as_float(item.get("value"))))
        else:
            points.append((None, wording.as_float(item)))
    return tuple(points)


def read_breaches(reasons: Mapping) -> list[Breach]:
    """The series that breached: ``breaches`` or, in older records, the flat
    counter/values. A manual firing's record has neither."""
    raw = reasons.get("breaches")
    if isinstance(raw, list) and raw:
        entries = [e for e in raw if isinstance(e, Mapping)]
    elif "counter" in reasons or "values" in reasons:
        entries = [reasons]
    else:
        entries = []
    return [_breach(entry, reasons) for entry in entries]


def _breach(entry: Mapping, reasons: Mapping) -> Breach:
    points = _points(entry.get("values"))
    return Breach(
        counter=_text(entry.get("counter")) or "An unnamed counter",
        node=_text(entry.get("node")) or None,
        aggregation=_text(entry.get("aggregation")) or _text(reasons.get("aggregation")),
        nodes=_count(entry.get("nodes")),
        comparison=_text(entry.get("comparison")),
        threshold=wording.as_float(entry.get("threshold")),
        count=_count(entry.get("count")),
        needed=_count(entry.get("needed")),
        points=points,
    )


# ---------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------
def explain(reasons: Any, facts: Facts | None = None) -> Explanation:
    """Sentences and charts for one execution's recorded ``reasons``."""
    facts = facts or Facts()
    record = reasons if isinstance(reasons, Mapping) else {}
    breaches = read_breaches(record)
    automatic = facts.automatic
    if automatic is None:
        automatic = not record.get("manual") and bool(breaches or record.get("trigger"))
    sentences = _automatic(record, facts, breaches) if automatic else _manual(record, facts, breaches)
    if not isinstance(reasons, Mapping) and reasons not in (None, "", []):
        sentences.append("The recorded reason is in a form this version does not read.")
    sentences += _outcome(record, facts, automatic)
    sentences += _missing_data(record, breaches)
    return Explanation([_sentence(s) for s in sentences if s], charts(breaches))


def _sentence(words: str) -> str:
    """A full stop at the end. The first letter stays as written: a sentence
    may start with a counter's name, which is not to be capitalised."""
    words = words.strip()
    return words + ("" if words.endswith((".", "…")) else ".")


def _trigger_name(record: Mapping, facts: Facts) -> str:
    return facts.trigger or _text(record.get("trigger"))


def _automatic(record: Mapping, facts: Facts, breaches: list[Breach]) -> list[str]:
    name = _trigger_name(record, facts)
    if _dry_run(record, facts):
        fired = f"the trigger {name or '?'} would have fired (dry run)"
    else:
        fired = f"fired by the trigger {name}" if name else f"fired by {facts.fired_by or 'the evaluator'}"
    timing = wording.as_float(record.get("timing_minutes"))
    if timing:
        fired += f", whose condition held for {wording.duration_text(timing * 60)}"
    if not breaches:
        return [f"{fired[:1].upper()}{fired[1:]}; no breach details were recorded"]
    sentences = [b.sentence() for b in breaches]
    sentences[-1] += f"; {fired}"
    return sentences


def _manual(record: Mapping, facts: Facts, breaches: list[Breach]) -> list[str]:
    who = facts.fired_by or (f"user {_text(record.get('user'))}" if _text(record.get("user")) else "")
    if who.startswith("command line"):
        said = f"Fired from the {who}"
    else:
        said = f"Fired by {who or 'hand'}"
    via = VIA.get(_text(record.get("via")).lower(), "")
    if via and not who.startswith("command line"):
        said += f" {via}"
    what = _text(record.get("fired"))
    if not what:
        what = f"trigger {facts.trigger}" if facts.trigger else (f"action {facts.action}" if facts.action else "")
    if what:
        said += f": the {what}" + ("'s chain" if what.startswith("trigger ") else "")
    target = facts.target_node or _text(record.get("node"))
    if target:
        said += f", on node {target}"
    return [b.sentence() for b in breaches] + [said]


def _dry_run(record: Mapping, facts: Facts) -> bool:
    return facts.status == WOULD_FIRE or (record.get("dry_run") is True and not facts.status)


def _outcome(record: Mapping, facts: Facts, automatic: bool) -> list[str]:
    if _dry_run(record, facts):
        return ["Dry run: nothing was run and the cluster was left as it was"]
    if facts.status == BLOCKED:
        note = next((line.split("blocked:", 1)[1].strip() for line in (facts.log or "").splitlines()
                     if "blocked:" in line), "")
        return [f"Blocked, nothing was run: {note}" if note
                else "Blocked, nothing was run: another execution was changing the cluster's size"]
    if automatic:
        return [_cooldown(record)]
    return []


def _cooldown(record: Mapping) -> str:
    seconds = wording.as_float(record.get("cooldown_s"))
    fired_at = wording.parse_moment(record.get("evaluated_at"))
    if not seconds or fired_at is None:
        return ""
    until = fired_at + timedelta(seconds=seconds)
    return (f"The trigger's cooldown of {wording.duration_text(seconds)} kept it from firing again "
            f"before {wording.moment_text(until)}")


def _missing_data(record: Mapping, breaches: list[Breach]) -> list[str]:
    treatment = MISSING_DATA.get(_text(record.get("missing_data")))
    gaps = sum(1 for b in breaches for _, v in b.points if v is None)
    if not treatment or not gaps:
        return []
    return [f"{wording.plural(gaps, 'missing sample')} {'was' if gaps == 1 else 'were'} {treatment}"]


def charts(breaches: list[Breach]) -> list[ThresholdChart]:
    """One chart per counter and threshold, a line per node (or aggregate)."""
    groups: dict[tuple, dict[str, tuple]] = {}
    for b in breaches:
        lines = groups.setdefault((b.counter, b.comparison, b.threshold), {})
        lines.setdefault(b.series_label, b.points)
    out = []
    for (counter, comparison, threshold), lines in groups.items():
        title = f"{counter} {wording.sign(comparison)} {wording.number(threshold)}"
        chart = wording.threshold_chart(title, comparison, threshold, lines)
        if chart is not None:
            out.append(chart)
    return out


def explain_execution(execution) -> Explanation:
    """``explain`` for an Execution row; a failure here is logged and gives a
    plain sentence, never an error page."""
    try:
        facts = Facts(
            status=str(execution.status or ""),
            automatic=bool(execution.automatic),
            fired_by=execution.fired_by or "",
            trigger=execution.trigger.name if execution.trigger_id else "",
            action=execution.action.name if execution.action_id else "",
            target_node=execution.target_node_name or "",
            log=execution.log or "",
        )
        return explain(execution.reasons, facts)
    except Exception:  # words about a firing must not break the page showing it
        logger.exception("cannot explain execution #%s", getattr(execution, "pk", "?"))
        return Explanation([_sentence(f"Fired by {getattr(execution, 'fired_by', '') or 'an unknown source'}")])
