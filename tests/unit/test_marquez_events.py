"""Raw OpenLineage events as received (`lineage_events`) and Marquez's `GET /api/v1/events/lineage` over them.

Rows are made by the sink's own row function from the real producers' corpus lines (each line a message at
its own offset) and inserted through the sink's writer; every expected answer is computed here from the
inputs' eventTime and Marquez's SQL (OpenLineageDao.getAllLineageEvents*, getAllLineageTotalCount): RunEvents
only, `after` <= eventTime < `before`, newest first unless asc, limit/offset, totalCount over every event of
the range. Plus the row function's refusals, the table's retention, and the sink's wiring of the topic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from sinks.batching import Batcher
from sinks.metrics import SinkMetrics
from sinks.raw_events import lineage_event_row
from sinks.retention import apply_retention, current_retention
from sinks.rows import LINEAGE_EVENTS, RowError
from sinks.tables import sink_tables
from sinks.writer import ClickHouseWriter
from upriver.http.api import ApiError, TextBody
from upriver.http.routes import handle
from upriver.readside.lineage import LineageReader
from upriver.settings import Settings

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus"
PATH = "/api/v1/events/lineage"
# the messages' Kafka timestamp: an hour ago (a row that arrived longer ago than the retention is dropped)
RECEIVED_MS = (time.time_ns() // 1_000_000_000 - 3600) * 1000
RECEIVED = datetime.fromtimestamp(RECEIVED_MS // 1000, UTC)
DATASET_EVENT = json.dumps({
    "eventTime": "2026-01-05T09:00:00Z", "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/DatasetEvent",
    "dataset": {"namespace": "s3://lake", "name": "orders", "facets": {}},
}).encode()  # fmt: skip
JOB_EVENT = json.dumps({
    "eventTime": "2026-01-05T09:30:00Z", "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/JobEvent",
    "job": {"namespace": "airflow", "name": "dag.task"}, "inputs": [], "outputs": [],
}).encode()  # fmt: skip
FUTURE = json.dumps({
    "eventType": "START", "eventTime": "2031-06-01T00:00:00Z", "producer": "p",
    "run": {"runId": "0194a1b2-0000-7000-8000-000000000001"}, "job": {"namespace": "n", "name": "later"},
}).encode()  # fmt: skip


@dataclass(frozen=True)
class Sent:
    raw: bytes
    offset: int
    at: datetime  # its eventTime
    run_event: bool


def _time(raw: bytes) -> datetime:
    t = datetime.fromisoformat(json.loads(raw)["eventTime"])
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def corpus() -> list[bytes]:
    return [line.encode() for p in sorted(CORPUS.glob("*.ndjson")) for line in p.read_text().splitlines()]


def store(writer: ClickHouseWriter, raws: list[bytes], first_offset: int = 0, partition: int = 0) -> list[Sent]:
    rows = [lineage_event_row(raw, partition, first_offset + i, RECEIVED_MS) for i, raw in enumerate(raws)]
    token = f"test:{partition}:{first_offset}-{first_offset + len(raws)}"
    writer.insert(LINEAGE_EVENTS.name, rows, LINEAGE_EVENTS.columns, LINEAGE_EVENTS.types, token)
    return [Sent(raw, first_offset + i, _time(raw), "run" in json.loads(raw)) for i, raw in enumerate(raws)]


@pytest.fixture
def loaded(ch_client: Client, ch_database: str) -> tuple[LineageReader, list[Sent]]:
    writer = ClickHouseWriter(ch_client, ch_database)
    sent = store(writer, corpus())
    sent += store(writer, [DATASET_EVENT, JOB_EVENT, FUTURE], first_offset=len(sent))
    return LineageReader(ch_client, ch_database), sent


def get(reader: LineageReader, **params: str) -> tuple[str, dict[str, Any]]:
    from urllib.parse import urlencode

    answer = handle(reader, PATH, urlencode(params))
    assert isinstance(answer, TextBody) and answer.content_type == "application/json"
    return answer.text, json.loads(answer.text)


def expected(sent: list[Sent], after: datetime, before: datetime, asc: bool = False) -> tuple[list[Sent], int]:
    """Marquez's answer from the inputs: RunEvents in [after, before) by eventTime (ties: arrival order,
    Upriver's choice where Marquez's order is unspecified), and the count of every event in the range."""
    in_range = [s for s in sent if after <= s.at < before]
    events = sorted((s for s in in_range if s.run_event), key=lambda s: (s.at, s.offset), reverse=not asc)
    return events, len(in_range)


def body(events: list[Sent], total: int) -> str:
    return '{"events": [' + ", ".join(s.raw.decode() for s in events) + f'], "totalCount": {total}}}'


MARQUEZ_AFTER, MARQUEZ_BEFORE = datetime(1970, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)


def test_defaults_answer_the_newest_100_run_events_byte_for_byte_as_received(loaded: Any) -> None:
    reader, sent = loaded
    events, total = expected(sent, MARQUEZ_AFTER, MARQUEZ_BEFORE)
    assert len(events) > 100 and total == len(sent) - 1  # the 2031 event is past Marquez's default `before`
    text, doc = get(reader)
    assert text == body(events[:100], total)  # each payload exactly as the producer wrote it
    assert doc["totalCount"] == total and [e["eventTime"] for e in doc["events"]][:2] == [
        json.loads(s.raw)["eventTime"] for s in events[:2]
    ]


def test_pages_in_both_directions_join_up_to_the_whole_range(loaded: Any) -> None:
    reader, sent = loaded
    for direction, asc in (("desc", False), ("asc", True), ("ASC", True), ("Desc", False)):
        events, total = expected(sent, MARQUEZ_AFTER, MARQUEZ_BEFORE, asc)
        pages, offset = [], 0
        while offset < len(events) + 37:
            _, doc = get(reader, limit="37", offset=str(offset), sortDirection=direction)
            assert doc["totalCount"] == total
            pages += doc["events"]
            offset += 37
        assert pages == [json.loads(s.raw) for s in events], direction
    assert get(reader, limit="0")[1] == {"events": [], "totalCount": len(sent) - 1}


def test_before_and_after_bound_the_range_half_open_with_any_offset(loaded: Any) -> None:
    reader, sent = loaded
    flink = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # the 15 Flink events and others share this instant
    cases = [
        ("2026-01-05T08:00:00Z", "2030-01-01T00:00:00+00:00", flink, MARQUEZ_BEFORE),
        ("2021-01-01T00:00:00.000Z", "2026-01-05T08:00:00Z", datetime(2021, 1, 1, tzinfo=UTC), flink),
        ("2026-01-05T09:00:00+01:00", "2026-01-05T10:00:00+02:00", flink, flink),  # the same instants
        ("2020-12-28T19:52:00.001+10:00", "2020-12-28T09:52:00.001000001Z",
         datetime(2020, 12, 28, 9, 52, 0, 1000, tzinfo=UTC), datetime(2020, 12, 28, 9, 52, 0, 1001, tzinfo=UTC)),
        ("2000-01-01T00:00Z", "2032-01-01T00:00:00Z[UTC]", datetime(2000, 1, 1, tzinfo=UTC),
         datetime(2032, 1, 1, tzinfo=UTC)),
    ]  # fmt: skip
    sizes = []
    for after, before, lo, hi in cases:
        events, total = expected(sent, lo, hi)
        text, _ = get(reader, after=after, before=before, limit="1000")
        assert text == body(events, total), (after, before)
        sizes.append(len(events))
    assert sizes[2] == 0 and all(sizes[:2]) and sizes[3] == 7 and sizes[4] == len(sent) - 2
    assert sum(1 for s in sent if s.at == flink) > 15  # ties, in arrival order


def test_a_replayed_message_is_answered_once(ch_client: Client, ch_database: str) -> None:
    writer = ClickHouseWriter(ch_client, ch_database)
    line = corpus()[0]
    store(writer, [line], first_offset=5)
    store(writer, [line], first_offset=5)  # the sink re-inserting after a crash (another batch, same position)
    store(writer, [line], first_offset=6)  # the producer sending it twice: Marquez keeps both too
    _, doc = get(LineageReader(ch_client, ch_database))
    assert doc == {"events": [json.loads(line)] * 2, "totalCount": 2}


def test_a_name_with_a_lone_surrogate_is_stored_and_answered_as_sent(ch_client: Client, ch_database: str) -> None:
    """JSON may escape a lone surrogate (the HTTP ingest accepts one, its raw copy keeps the escape): the insert
    of its row must not fail (that stopped the sink in tests/integration/test_bad_input_stack.py)."""
    doc = json.loads(corpus()[0])
    doc["job"]["name"] = "odd\udfffname"
    line = json.dumps(doc).encode()  # ASCII, the surrogate as an escape
    assert b"\\udfff" in line
    store(ClickHouseWriter(ch_client, ch_database), [line], first_offset=0)
    text, answer = get(LineageReader(ch_client, ch_database))
    assert answer == {"events": [doc], "totalCount": 1} and line.decode() in text


@pytest.mark.parametrize(
    ("params", "status", "answer"),
    [
        ({"before": "yesterday"}, 400, {"code": 400, "message": "Parameter is invalid: Text 'yesterday' could not be "
                                                               "parsed: not an ISO 8601 date-time with an offset"}),
        ({"after": "2026-01-05T08:00:00"}, 400, None),  # no offset: not a ZonedDateTime
        ({"after": "2026-01-05T08:00:00 00:00"}, 400, None),  # an unencoded '+' arrives as a space
        ({"after": "2026-02-30T08:00:00Z"}, 400, None),
        ({"sortDirection": "up"}, 400,
         {"code": 400, "message": "query param sortDirection must be one of [DESC, ASC]"}),
        ({"limit": "-1"}, 400, {"errors": ["query param limit must be greater than or equal to 0"]}),
        ({"offset": "-5"}, 400, {"errors": ["query param offset must be greater than or equal to 0"]}),
    ],
)  # fmt: skip
def test_bad_parameters_are_refused_as_marquez_refuses_them(
    loaded: Any, params: dict[str, str], status: int, answer: dict[str, Any] | None
) -> None:
    with pytest.raises(ApiError) as err:
        get(loaded[0], **params)
    assert err.value.status == status
    found = err.value.body()
    assert found == answer if answer else (found["code"] == 400 and found["message"].startswith("Parameter is invalid"))


# ---- the row function, the retention, the sink's wiring ------------------------------------------------


def test_the_row_keeps_the_message_and_reads_the_columns_from_it() -> None:
    raw = corpus()[0]
    doc = json.loads(raw)
    row = dict(zip(LINEAGE_EVENTS.columns, lineage_event_row(raw, 3, 42, RECEIVED_MS), strict=True))
    assert row == {
        "event_time": _time(raw), "kind": "RUN_EVENT", "event_type": doc["eventType"], "run_id": doc["run"]["runId"],
        "job_namespace": doc["job"]["namespace"], "job_name": doc["job"]["name"], "producer": doc["producer"],
        "payload": raw.decode(), "received_at": RECEIVED, "kafka_partition": 3,
        "kafka_offset": 42,
    }  # fmt: skip
    assert lineage_event_row(DATASET_EVENT, 0, 0, RECEIVED_MS)[1:6] == ("DATASET_EVENT", "", "", "", "")
    assert lineage_event_row(JOB_EVENT, 0, 0, RECEIVED_MS)[1:6] == ("JOB_EVENT", "", "", "airflow", "dag.task")
    now = datetime.now(UTC)
    assert lineage_event_row(raw, 0, 0, -1)[8] >= now - timedelta(seconds=5)  # no Kafka timestamp: now


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'"text"', '{"eventTime": "2026-01-01T00:00:00Z", "x": "é"}'.encode("utf-16"),
     b'{"eventTime": "2026-01-01T00:00:00Z", "value": NaN}', b'{"producer": "p"}', b'{"eventTime": "soon"}',
     b'{"eventTime": "1800-01-01T00:00:00Z"}', b"\xff\xfe"],
)  # fmt: skip
def test_what_cannot_be_written_into_an_answer_is_no_row(raw: bytes) -> None:
    with pytest.raises(RowError):
        lineage_event_row(raw, 0, 0, RECEIVED_MS)


def test_retention_is_set_only_when_it_differs_and_expires_old_arrivals(ch_client: Client, ch_database: str) -> None:
    assert current_retention(ch_client, ch_database) == 30  # the migration's default
    assert apply_retention(ch_client, ch_database, 30) is False
    assert apply_retention(ch_client, ch_database, 7) is True and current_retention(ch_client, ch_database) == 7
    old, new = (lineage_event_row(corpus()[i], 0, i, RECEIVED_MS) for i in (0, 1))
    now = datetime.now(UTC)
    rows = [(*old[:8], now - timedelta(days=8), *old[9:]), (*new[:8], now - timedelta(days=6), *new[9:])]
    ClickHouseWriter(ch_client, ch_database).insert("lineage_events", rows, LINEAGE_EVENTS.columns,
                                                    LINEAGE_EVENTS.types, "ttl")  # fmt: skip
    ch_client.command(f"OPTIMIZE TABLE `{ch_database}`.lineage_events FINAL")
    kept = ch_client.query(f"SELECT kafka_offset FROM `{ch_database}`.lineage_events").result_rows
    assert [r[0] for r in kept] == [1]
    assert apply_retention(ch_client, ch_database, 0) is True and current_retention(ch_client, ch_database) == 0
    with pytest.raises(ValueError, match="UPRIVER_RAW_EVENT_RETENTION_DAYS"):
        apply_retention(ch_client, ch_database, -1)


class _Message:
    def __init__(self, topic: str, value: bytes, stamp: int) -> None:
        self._topic, self._value, self._stamp = topic, value, stamp

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 1

    def offset(self) -> int:
        return 9

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, self._stamp)  # CreateTime


def test_the_sink_feeds_the_openlineage_topic_to_lineage_events_with_its_kafka_time() -> None:
    settings = Settings()
    tables = sink_tables(settings)
    spec = tables[settings.topics.openlineage]
    assert spec.table is LINEAGE_EVENTS
    registry = CollectorRegistry()
    batcher = Batcher(tables, 10, 1000, lambda _table: {}, SinkMetrics(registry))
    batcher.accept(_Message(settings.topics.openlineage, corpus()[0], RECEIVED_MS + 1234))
    batcher.accept(_Message(settings.topics.openlineage, b"[]", RECEIVED_MS))  # skipped and counted
    [batch] = batcher.batches()
    assert batch.table is LINEAGE_EVENTS and len(batch.rows) == 1
    received = batch.rows[0][LINEAGE_EVENTS.columns.index("received_at")]
    assert received == RECEIVED + timedelta(milliseconds=1234)
    labels = {"topic": settings.topics.openlineage}
    assert registry.get_sample_value("upriver_sink_undecodable_messages_total", labels) == 1
