"""Marquez's `GET /api/v1/stats/{lineage-events,jobs,datasets,sources}` over embedded ClickHouse.

The clock is fixed just after a daylight-saving change (America/New_York, 2026-03-08) so WEEK's local days
are not all 24 hours; Asia/Kolkata's half-hour offset puts its midnights off the UTC hours. Every expected
bucket and count is computed here from the inputs and Marquez's StatsDao SQL: DAY is the 24 hours from
date_trunc('hour', now - 23 h), WEEK the 7 local days up to today's, written as local midnights with a `Z`;
lineage-events counts FAIL/START/COMPLETE/ABORT RunEvents by event time, jobs/datasets/sources are
cumulative (first seen before each bucket's end). Runs are stored as the worker stores them: one run
record per event, at the run's new revision.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from processors.lineage import runs
from schemas.openlineage import to_record
from sinks.raw_events import lineage_event_row
from sinks.rows import LINEAGE_EVENTS, RUNS, run_row
from sinks.writer import ClickHouseWriter
from upriver.http.api import ApiError, TextBody
from upriver.http.marquez import events as marquez_events
from upriver.http.routes import handle
from upriver.readside.lineage import LineageReader

NOW = datetime(2026, 3, 10, 15, 42, 13, 500000, tzinfo=UTC)
NY, KOLKATA = ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")
TYPES = ("START", "COMPLETE", "FAIL", "ABORT", "RUNNING", "OTHER", "complete")  # the last four never counted
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def run_event(etype: str, t: datetime, run: str, job: str, ins: Any = (), outs: Any = ()) -> dict[str, Any]:
    return {"eventType": etype, "eventTime": _iso(t), "producer": PRODUCER, "run": {"runId": run},
            "job": {"namespace": "stats", "name": job}, "inputs": list(ins), "outputs": list(outs)}  # fmt: skip


def ds(name: str, source: str | None) -> dict[str, Any]:
    facets = {"dataSource": {"name": source, "uri": f"postgres://{source}"}} if source else {}
    return {"namespace": "stats", "name": name, "facets": facets}


def _run_id(i: int) -> str:
    return f"0194a1b2-0000-7000-8000-{i:012d}"


def workload() -> list[dict[str, Any]]:
    """Runs spread over the 9 days before NOW (and a few after it), every 47 minutes; each reads a shared
    input with a source (or none) at START and writes its own output at its end (COMPLETE, FAIL, ...). Plus
    a JobEvent and a DatasetEvent."""
    out = []
    for i in range(9 * 24 * 60 // 47 + 4):
        start = NOW + timedelta(minutes=100) - timedelta(minutes=47 * i, microseconds=i)
        # a new job every 20 runs (~16 hours); a source first named by the newest runs
        job, source = f"job{i // 20}", "late" if i < 6 else (None, "pg", "mysql", "mysql")[i % 4]
        out.append(run_event("START", start, _run_id(i), job, ins=[ds(f"in{i % 5}", source)]))
        end = TYPES[1 + i % (len(TYPES) - 1)]
        out.append(run_event(end, start + timedelta(minutes=3), _run_id(i), job, outs=[ds(f"out{i}", "warehouse")]))
    out.append({"eventTime": _iso(NOW - timedelta(hours=30)), "producer": PRODUCER,
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/JobEvent",
                "job": {"namespace": "stats", "name": "declared"}, "inputs": [ds("declared_in", "kafka")],
                "outputs": []})  # fmt: skip
    out.append({"eventTime": _iso(NOW - timedelta(hours=5)), "producer": PRODUCER,
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/DatasetEvent",
                "dataset": ds("described", "s3")})  # fmt: skip
    return out


def when(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["eventTime"])


@pytest.fixture
def api(ch_client: Client, ch_database: str, monkeypatch: pytest.MonkeyPatch) -> LineageReader:
    monkeypatch.setattr(marquez_events, "now_ms", lambda: int(NOW.timestamp() * 1000))
    writer = ClickHouseWriter(ch_client, ch_database)
    docs = workload()
    received = (time.time_ns() // 1_000_000) - 60_000
    raw = [lineage_event_row(json.dumps(d).encode(), 0, i, received) for i, d in enumerate(docs)]
    writer.insert("lineage_events", raw, LINEAGE_EVENTS.columns, LINEAGE_EVENTS.types, "stats:raw")
    states: dict[str, runs.RunState] = {}
    rows = []
    for i, doc in enumerate(sorted(docs, key=when)):  # as the worker: a run record per event, in arrival order
        record = to_record(doc)
        states[record["run_id"]] = runs.merge(states.get(record["run_id"]), record)[0]
        rows.append(run_row(runs.run_record(states[record["run_id"]], 0), 0, i))
    writer.insert("runs", rows, RUNS.columns, RUNS.types, "stats:runs")
    return LineageReader(ch_client, ch_database)


def stats(reader: LineageReader, what: str, **params: str) -> Any:
    answer = handle(reader, f"/api/v1/stats/{what}", urlencode(params))
    assert isinstance(answer, TextBody) and answer.content_type == "application/json"
    return json.loads(answer.text)


def day_buckets() -> list[tuple[datetime, datetime, str, str]]:
    first = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    spans = [(first + timedelta(hours=i), first + timedelta(hours=i + 1)) for i in range(24)]
    return [(a, b, a.strftime("%Y-%m-%dT%H:%M:%SZ"), b.strftime("%Y-%m-%dT%H:%M:%SZ")) for a, b in spans]


def week_buckets(zone: ZoneInfo) -> list[tuple[datetime, datetime, str, str]]:
    today = NOW.astimezone(zone).date()
    out = []
    for back in range(6, -1, -1):
        day, following = today - timedelta(days=back), today - timedelta(days=back - 1)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        end = datetime(following.year, following.month, following.day, tzinfo=zone)
        out.append((start, end, f"{day}T00:00:00Z", f"{following}T00:00:00Z"))
    return out


def lineage_metrics(buckets: list[tuple[datetime, datetime, str, str]]) -> list[dict[str, Any]]:
    docs = [d for d in workload() if "run" in d]
    out = []
    for start, end, label, end_label in buckets:
        inside = [d["eventType"] for d in docs if start <= when(d) < end]
        out.append({"startInterval": label, "endInterval": end_label, "fail": inside.count("FAIL"),
                    "start": inside.count("START"), "complete": inside.count("COMPLETE"),
                    "abort": inside.count("ABORT")})  # fmt: skip
    return out


def firsts() -> dict[str, dict[str, datetime]]:
    """What Marquez would have created, and when each was first seen: jobs (a DatasetEvent makes none),
    datasets, sources (a dataset's dataSource, else "default"); Upriver dates each by the start of the
    first run naming it (Marquez by the arrival of that event: the same here for jobs and inputs)."""
    found: dict[str, dict[str, datetime]] = {"jobs": {}, "datasets": {}, "sources": {}}
    run_start: dict[str, datetime] = {}

    def seen(kind: str, key: str, t: datetime) -> None:
        found[kind][key] = min(t, found[kind].get(key, t))

    for doc in workload():
        t = when(doc)
        named = [*doc.get("inputs", []), *doc.get("outputs", []), *([doc["dataset"]] if "dataset" in doc else [])]
        if "job" in doc:
            seen("jobs", doc["job"]["name"], t)
        start = run_start.setdefault(doc["run"]["runId"], t) if "run" in doc else t
        for d in named:
            seen("datasets", d["name"], start)
            seen("sources", d["facets"].get("dataSource", {}).get("name", "default"), start)
    return found


def interval_metrics(kind: str, buckets: list[tuple[datetime, datetime, str, str]]) -> list[dict[str, Any]]:
    times = firsts()[kind].values()
    return [{"startInterval": label, "endInterval": end_label, "count": sum(1 for t in times if t < end)}
            for _, end, label, end_label in buckets]  # fmt: skip


def test_lineage_events_by_hour_and_by_local_day(api: LineageReader) -> None:
    want = lineage_metrics(day_buckets())
    assert sum(b["start"] + b["complete"] + b["fail"] + b["abort"] for b in want) > 40
    assert stats(api, "lineage-events", period="DAY") == want
    assert stats(api, "lineage-events", period="day", timezone="Asia/Kolkata") == want  # DAY ignores the zone
    for zone in (NY, KOLKATA):
        want_week = lineage_metrics(week_buckets(zone))
        assert stats(api, "lineage-events", period="WEEK", timezone=str(zone)) == want_week, zone
    utc = stats(api, "lineage-events", period="WEEK", timezone="UTC")
    assert (utc[0]["startInterval"], utc[-1]["endInterval"]) == ("2026-03-04T00:00:00Z", "2026-03-11T00:00:00Z")


@pytest.mark.parametrize("kind", ["jobs", "datasets", "sources"])
def test_jobs_datasets_and_sources_seen_by_the_end_of_each_bucket(api: LineageReader, kind: str) -> None:
    want_day = interval_metrics(kind, day_buckets())
    assert want_day[0]["count"] < want_day[-1]["count"]  # some are first seen inside the day
    assert stats(api, kind, period="DAY") == want_day
    for zone in (NY, KOLKATA):
        assert stats(api, kind, period="WEEK", timezone=str(zone)) == interval_metrics(kind, week_buckets(zone))
    assert stats(api, kind, period="WEEK") == []  # Marquez's SQL with a NULL zone makes no series


def test_what_is_counted() -> None:
    """The expectations themselves: a DatasetEvent makes no job, sources include Marquez's "default"."""
    seen = firsts()
    runs = sum(1 for d in workload() if d.get("eventType") == "START")
    assert "declared" in seen["jobs"] and len(seen["jobs"]) == (runs - 1) // 20 + 2
    assert set(seen["sources"]) == {"default", "pg", "mysql", "late", "warehouse", "kafka", "s3"}
    assert {"described", "declared_in", "in0", "out0"} <= set(seen["datasets"])


@pytest.mark.parametrize(
    ("what", "params", "answer"),
    [
        ("lineage-events", {}, "Invalid period"),
        ("jobs", {"timezone": "UTC"}, "Invalid period"),
        ("lineage-events", {"period": "WEEK"}, "Timezone must be specified for period 'WEEK'"),
        ("datasets", {"period": "MONTH"}, {"code": 400, "message": "query param period must be one of [DAY, WEEK]"}),
        ("sources", {"period": "WEEK", "timezone": "Mars/Olympus"},
         {"code": 400, "message": 'time zone "Mars/Olympus" not recognized'}),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_as_marquez_refuses_them(
    api: LineageReader, what: str, params: dict[str, str], answer: Any
) -> None:
    with pytest.raises(ApiError) as err:
        stats(api, what, **params)
    assert err.value.status == 400
    found = err.value.body()
    if isinstance(answer, str):  # Marquez writes these as bare strings, not JSON
        assert isinstance(found, TextBody) and found.text == answer
    else:
        assert found == answer
