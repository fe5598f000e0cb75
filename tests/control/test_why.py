"""An execution's "why" in words and chart data (apps/control/why.py and
wording.py): every shape of reasons the code records, and records that are
old, partial or damaged — words every time, never an error, never JSON."""
from __future__ import annotations

import json
import math

import pytest

from apps.control import wording
from apps.control.why import Facts, explain

pytestmark = pytest.mark.django_db(databases=[])


@pytest.fixture(autouse=True)
def utc(settings):
    settings.TIME_ZONE = "UTC"


def stamp(second: int) -> str:
    return f"2026-11-30T14:{2 + second // 60:02d}:{second % 60:02d}+00:00"


def breach(node="web-3", values=(1.4, 1.2, 1.9, 1.6, 1.1, 1.3), **extra) -> dict:
    return {"kind": "k", "counter_id": 7, "counter": "load1", "jvm_id": None, "node_id": 3, "node": node,
            "aggregation": "any", "nodes": 1, "comparison": ">=", "threshold": 1.0, "interval_s": 10,
            "count": len(values), "needed": len(values),
            "values": [{"stamp": stamp(10 * i), "value": v} for i, v in enumerate(values)], **extra}


def evaluator_reasons(*breaches, **extra) -> dict:
    """What apps/control/evaluator.py records today."""
    breaches = breaches or (breach(),)
    first = breaches[0]
    return {"trigger_id": 1, "trigger": "demo-high-load", "cluster": "web", "evaluated_at": stamp(60),
            "timing_minutes": 1, "aggregation": "any", "missing_data": "ignore", "dry_run": False,
            "cooldown_s": 300, "counter": first["counter"], "node": first["node"], "node_id": first["node_id"],
            "values": first["values"], "breaches": list(breaches), **extra}


AUTOMATIC = Facts(status="succeeded", automatic=True, fired_by="trigger demo-high-load",
                  trigger="demo-high-load")


def assert_words(text: str) -> None:
    """Sentences, not a dump of the record."""
    assert text and text.endswith(".")
    for raw in ("{", "}", "[", "':", "']", '"', "None", "nan", "_id", "breaches"):
        assert raw not in text, (raw, text)


def test_an_evaluator_firing_reads_as_the_breach_and_the_trigger():
    why = explain(evaluator_reasons(), AUTOMATIC)
    assert why.sentences[0] == (
        "load1 on node web-3 was ≥ 1 for 6 consecutive samples (1.4, 1.2, 1.9, 1.6, …, 1.3) "
        "from 2026-11-30 14:02:00 to 14:02:50 UTC; fired by the trigger demo-high-load, "
        "whose condition held for 1 min.")
    assert why.sentences[1] == ("The trigger's cooldown of 5 min kept it from firing again before "
                                "2026-11-30 14:08:00 UTC.")
    assert len(why.sentences) == 2
    assert_words(why.text)


def test_several_nodes_give_a_sentence_each_and_one_chart_with_a_line_each():
    why = explain(evaluator_reasons(breach("web-3"), breach("web-4", values=(2.0, 2.5))), AUTOMATIC)
    assert why.sentences[0].startswith("load1 on node web-3 was ≥ 1 for 6 consecutive samples")
    assert why.sentences[1].startswith("load1 on node web-4 was ≥ 1 for 2 consecutive samples (2, 2.5) "
                                       "from 2026-11-30 14:02:00 to 14:02:10 UTC; fired by the trigger")
    [chart] = why.chart_data()
    assert chart["title"] == "load1 ≥ 1" and chart["threshold"] == 1.0
    assert chart["threshold_label"] == "threshold (≥ 1)"
    assert [line["label"] for line in chart["lines"]] == ["web-3", "web-4"]
    assert len(chart["stamps"]) == 6 and chart["stamps"] == sorted(chart["stamps"])
    assert chart["lines"][1]["values"] == [2.0, 2.5, None, None, None, None]
    json.dumps(why.chart_data(), allow_nan=False)  # what json_script hands the browser


def test_two_counters_give_two_charts():
    heap = breach("web-3", values=(6e8, 7e8), counter="heap_used", threshold=5.12e8, comparison=">")
    why = explain(evaluator_reasons(breach(), heap), AUTOMATIC)
    assert "heap_used on node web-3 was > 512M for 2 consecutive samples (600M, 700M)" in why.text
    assert [c["title"] for c in why.chart_data()] == ["load1 ≥ 1", "heap_used > 512M"]


def test_a_cluster_aggregate_names_the_aggregate_and_the_missing_samples():
    avg = breach(None, values=(0.2, None, 0.1), aggregation="avg", nodes=3, comparison="<=", threshold=0.3)
    why = explain(evaluator_reasons(avg, aggregation="avg", missing_data="breaching"), AUTOMATIC)
    assert why.sentences[0].startswith(
        "load1 (cluster average of 3 nodes) was ≤ 0.3 for 3 consecutive samples (0.2, missing, 0.1)")
    assert "1 missing sample was counted as breaching." in why.sentences
    assert why.chart_data()[0]["lines"][0] == {"label": "cluster average", "values": [0.2, None, 0.1]}


def test_a_dry_run_says_nothing_was_run():
    why = explain(evaluator_reasons(dry_run=True), Facts(status="would_fire", automatic=True,
                                                          trigger="demo-high-load"))
    assert why.sentences[0].endswith("; the trigger demo-high-load would have fired (dry run), "
                                     "whose condition held for 1 min.")
    assert why.sentences[1] == "Dry run: nothing was run and the cluster was left as it was."
    assert "fired by" not in why.text


def test_a_blocked_firing_quotes_what_blocked_it():
    log = ("2026-11-30 14:03:00 blocked: execution #12 (trigger scale-out) is still running and changes "
           "the cluster's size; automatic deploy/remove waits for it")
    why = explain(evaluator_reasons(), Facts(status="blocked", automatic=True, trigger="demo-high-load", log=log))
    assert why.sentences[-1] == ("Blocked, nothing was run: execution #12 (trigger scale-out) is still running "
                                 "and changes the cluster's size; automatic deploy/remove waits for it.")
    no_log = explain(evaluator_reasons(), Facts(status="blocked", automatic=True))
    assert no_log.sentences[-1] == ("Blocked, nothing was run: another execution was changing the "
                                    "cluster's size.")


@pytest.mark.parametrize(("reasons", "facts", "text"), [
    ({"manual": True, "fired": "trigger high-load", "user": "alice", "via": "console", "node": "web-1",
      "node_id": 4}, Facts(automatic=False, fired_by="user alice", trigger="high-load", target_node="web-1"),
     "Fired by user alice from the console: the trigger high-load's chain, on node web-1."),
    ({"manual": True, "fired": "action notify-ops", "user": "bob", "via": "api"},
     Facts(automatic=False, fired_by="user bob", action="notify-ops"),
     "Fired by user bob through the data API: the action notify-ops."),
    ({"manual": True, "via": "command line"}, Facts(automatic=False, fired_by="command line (root)",
                                                     trigger="high-load"),
     "Fired from the command line (root): the trigger high-load's chain."),
    ({"manual": True, "via": "command line"}, Facts(automatic=False, fired_by="user carol", action="mail"),
     "Fired by user carol from the command line: the action mail."),
    # Before "via": a console firing, a command-line one and an action by hand without reasons.
    ({"manual": True, "fired": "trigger high-load", "user": "alice"}, Facts(automatic=False),
     "Fired by user alice: the trigger high-load's chain."),
    ({"manual": True}, Facts(automatic=False, fired_by="command line (root)", trigger="t"),
     "Fired from the command line (root): the trigger t's chain."),
    ({}, Facts(automatic=False, fired_by="command line (root)", action="mail"),
     "Fired from the command line (root): the action mail."),
    ({}, Facts(automatic=False), "Fired by hand."),
])
def test_firings_by_hand_name_the_person_and_where_from(reasons, facts, text):
    assert explain(reasons, facts).text == text
    assert explain(reasons, facts).charts == []


@pytest.mark.parametrize(("reasons", "start"), [
    # Older evaluator records: flat counter/values, plain numbers, no breaches.
    ({"trigger": "scale-out", "counter": "load1", "values": [3.2]}, "load1 breached its threshold (3.2); fired by"),
    ({"counter": "cpu", "node": "app-1", "values": [91.0, 93.5]},
     "cpu on node app-1 breached its threshold (91, 93.5); fired by"),
    ({"trigger": "high-load"}, "Fired by the trigger t; no breach details were recorded."),
    ({"trigger": "high-load", "node_id": 4}, "Fired by the trigger t; no breach details were recorded."),
    ({}, "Fired by the trigger t; no breach details were recorded."),
])
def test_older_automatic_records(reasons, start):
    why = explain(reasons, Facts(status="succeeded", automatic=True, trigger="t"))
    assert why.text.startswith(start)
    assert why.charts == []  # no threshold, no times: nothing to draw
    assert_words(why.text)


BAD_BREACHES = [
    {"counter": 5, "node": ["x"], "comparison": None, "threshold": "high", "count": "six", "needed": -1,
     "values": "1,2,3"},
    {"values": [{"stamp": "yesterday", "value": "1.5"}, {"stamp": None, "value": float("nan")},
                {"value": True}, "7", None, {"stamp": 12, "value": float("inf")}]},
    {"counter": "load1", "threshold": float("nan"), "comparison": "~", "count": 2.5,
     "values": [{"stamp": stamp(0), "value": 1}]},
    {"counter": "load1", "node": "", "threshold": 1, "comparison": ">=", "count": 1,
     "values": [{"stamp": "2026-11-30T14:02:00", "value": 1.5}]},  # a naive stamp: taken as UTC
]


@pytest.mark.parametrize("reasons", [
    None, [], "", "fired", 42, ["a", 1], {"breaches": "many"}, {"breaches": [None, 3, "x"]},
    {"breaches": BAD_BREACHES}, {"breaches": [], "counter": None, "values": None},
    {"manual": "yes", "user": 5, "via": ["x"], "fired": {"a": 1}, "node": 3},
    {"evaluated_at": "not a time", "cooldown_s": "long", "timing_minutes": float("nan"),
     "missing_data": [1], "breaches": [breach()]},
    {"evaluated_at": 1e30, "cooldown_s": -5, "breaches": [breach(values=())]},
])
@pytest.mark.parametrize("facts", [Facts(), AUTOMATIC, Facts(status="blocked", automatic=False, log="x"),
                                   Facts(status="would_fire", automatic=True)])
def test_malformed_records_still_give_words_and_drawable_charts(reasons, facts):
    why = explain(reasons, facts)
    assert_words(why.text)
    json.dumps(why.chart_data(), allow_nan=False)
    for chart in why.chart_data():
        assert math.isfinite(chart["threshold"])
        assert all(len(line["values"]) == len(chart["stamps"]) for line in chart["lines"])


def test_a_record_that_is_not_an_object_says_so():
    assert explain(["load1", 3], AUTOMATIC).sentences[-1] == (
        "The recorded reason is in a form this version does not read.")


def test_bad_values_in_a_breach_are_left_out_not_shown_raw():
    why = explain({"breaches": BAD_BREACHES}, AUTOMATIC)
    assert why.sentences[:3] == [
        "An unnamed counter breached its threshold.",
        # The one value with a time: epoch seconds.
        ("An unnamed counter breached its threshold (1.5, missing, missing, 7, …, missing) "
         "at 1970-01-01 00:00:12 UTC."),
        "load1 breached its threshold (1) at 2026-11-30 14:02:00 UTC.",  # NaN threshold, "~", count 2.5
    ]
    assert why.sentences[3] == ("load1 was ≥ 1 for 1 sample (1.5) at 2026-11-30 14:02:00 UTC; "
                                "fired by the trigger demo-high-load.")
    [chart] = why.chart_data()  # only the breach with a usable threshold and a dated value
    assert chart["title"] == "load1 ≥ 1" and chart["lines"] == [{"label": "load1", "values": [1.5]}]


def test_times_are_written_in_the_configured_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    why = explain(evaluator_reasons(), AUTOMATIC)
    assert "from 2026-11-30 15:02:00 to 15:02:50 CET" in why.text
    assert "before 2026-11-30 15:08:00 CET" in why.text


@pytest.mark.parametrize(("raw", "text"), [
    (None, "missing"), (True, "missing"), ("x", "missing"), (float("nan"), "missing"), (0, "0"),
    (1.0, "1"), (0.25, "0.25"), (1 / 3, "0.3333"), (1234, "1234"), (20618.0, "20.6k"), (5.12e8, "512M"),
    (-25000, "-25k"), ("2.5", "2.5"),
])
def test_numbers(raw, text):
    assert wording.number(raw) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (30, "30 s"), (90, "90 s"), (60, "1 min"), (300, "5 min"), (3600, "1 h"), (5400, "1 h 30 min"),
    (None, ""), (-1, ""), ("x", ""),
])
def test_durations(seconds, text):
    assert wording.duration_text(seconds) == text


def test_spans_across_midnight_write_both_dates():
    start, end = wording.parse_moment("2026-11-30T23:59:50+00:00"), wording.parse_moment("2026-12-01T00:00:10Z")
    assert wording.span_text(start, end) == "from 2026-11-30 23:59:50 UTC to 2026-12-01 00:00:10 UTC"
    assert wording.span_text(end, start) == wording.span_text(start, end)
    assert wording.span_text(start, None) == "at 2026-11-30 23:59:50 UTC"
    assert wording.span_text(None, None) == ""


def test_a_threshold_chart_can_carry_a_policy_target():
    """What a scaling policy's decision record will draw: values against its target."""
    at = [wording.parse_moment(stamp(s)) for s in (0, 10)]
    chart = wording.threshold_chart("load1 average", ">=", 0.7, {"cluster average": list(zip(at, [0.9, 0.8]))},
                                    line_label="target", unit="load")
    assert chart is not None
    data = chart.as_dict()
    assert data["threshold_label"] == "target (≥ 0.7)" and data["unit"] == "load"
    assert data["lines"] == [{"label": "cluster average", "values": [0.9, 0.8]}]
    assert wording.threshold_chart("x", ">=", None, {"a": list(zip(at, [1, 2]))}) is None
    assert wording.threshold_chart("x", ">=", 1, {"a": [(None, 1)]}) is None
