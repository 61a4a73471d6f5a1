"""The HTTP ingest's raw copies on the OpenLineage topic, and the worker leaving them alone.

No Kafka here: the ingest's `_produce` (what it hands librdkafka) and the topics' limits are stubbed, as in
tests/unit/test_message_limits.py; the worker's handler runs over a list-backed output. What goes to the
broker for real, and what the sink and `/api/v1/events/lineage` make of it, is
tests/integration/test_openlineage_stack.py's `test_raw_events_...`.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from processors.lineage.handling import Codecs, EventHandler, Topics
from schemas.codec import make_codec
from schemas.keys import partition_key
from schemas.openlineage import MAX_DEPTH
from upriver.http import ingest as ingest_module
from upriver.http.ingest import IngestError, OpenLineageIngest, Outgoing, body_bytes

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus"
UNREACHABLE = {"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 1000}
EVENTS, RAW = "events", "openlineage"
HEADER = [("upriver-mapped", b"1")]


def corpus_events() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CORPUS / "dbt-postgres-duckdb.ndjson").read_text().splitlines()]


@dataclass
class Kafka:
    """What the ingest produced, and the topics' max.message.bytes its limit reads answer."""

    limits: dict[str, int]
    refuse: set[int]  # the event indices Kafka refuses as too large
    produced: list[list[Outgoing]]

    def read_limit(self, _config: Any, topic: str, timeout: float = 5.0) -> int | None:
        return self.limits.get(topic)

    def produce(self, out: list[Outgoing]) -> set[int]:
        self.produced.append(out)
        return {i for *_, i in out} & self.refuse


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Kafka:
    found = Kafka({EVENTS: 8_000_000, RAW: 8_000_000}, set(), [])
    monkeypatch.setattr(ingest_module, "read_message_limit", found.read_limit)
    monkeypatch.setattr(ingest_module, "LIMIT_REFRESH_S", 0.0)
    return found


def _ingest(kafka: Kafka, raw_topic: str | None = RAW) -> OpenLineageIngest:
    made = OpenLineageIngest(UNREACHABLE, EVENTS, make_codec("lineage_event"), timeout_s=2, raw_topic=raw_topic)
    made._produce = kafka.produce  # type: ignore[method-assign]
    return made


def _split(out: list[Outgoing]) -> tuple[list[Outgoing], list[Outgoing]]:
    return [o for o in out if o[0] == EVENTS], [o for o in out if o[0] == RAW]


def test_a_single_post_is_copied_as_its_body_exactly_beside_its_mapped_event(kafka: Kafka) -> None:
    event = corpus_events()[0]
    event["job"]["name"] = "modèle / ventes #1"  # written unescaped, indented: the copy keeps it so
    sent = json.dumps(event, indent=3, ensure_ascii=False).encode()
    _ingest(kafka).one(body_bytes(gzip.compress(sent), "gzip"))  # as the server hands it over: decompressed
    [out] = kafka.produced
    mapped, raw = _split(out)
    key = partition_key(event["run"]["runId"])
    assert [(m[1], m[3], m[4]) for m in mapped] == [(key, None, 0)]
    assert raw == [(RAW, key, sent, HEADER, 0)]


def test_a_batch_copies_each_accepted_element_as_sent(kafka: Kafka) -> None:
    events = corpus_events()[:3]
    events[1] = {**events[1], "eventTime": "not a time"}  # refused: no copy of it
    events[2]["run"]["facets"] = {"odd": {"text": "\ud800 and é"}}  # a lone surrogate inside an opaque facet
    result = _ingest(kafka).batch(json.dumps(events).encode())
    assert (result.successful, [f["index"] for f in result.failures]) == (2, [1])
    [out] = kafka.produced
    mapped, raw = _split(out)
    assert [r[1] for r in raw] == [m[1] for m in mapped] == [partition_key(e["run"]["runId"]) for e in events[::2]]
    assert all(r[3] == HEADER for r in raw) and [r[4] for r in raw] == [m[4] for m in mapped] == [0, 1]
    # each element's text as the body held it (json.dumps spaces and escapes, the surrogate as its escape)
    assert [r[2] for r in raw] == [json.dumps(events[0]).encode(), json.dumps(events[2]).encode()]
    assert json.loads(raw[1][2].decode("utf-8")) == events[2]


def test_a_batch_element_sent_with_a_lone_surrogate_in_raw_bytes_is_copied_as_valid_utf8(kafka: Kafka) -> None:
    event = corpus_events()[0]
    event["run"]["facets"] = {"odd": {"text": "__X__"}}
    body = json.dumps([event], indent=1).encode().replace(b"__X__", b"\xed\xa0\x80 \xc3\xa9")  # U+D800 as bytes
    result = _ingest(kafka).batch(body)
    assert result.successful == 1
    [out] = kafka.produced
    _, [copy] = _split(out)
    assert json.loads(copy[2].decode("utf-8"))["run"]["facets"]["odd"]["text"] == "\ud800 é"


def test_without_a_raw_topic_only_the_mapped_event_is_published(kafka: Kafka) -> None:
    _ingest(kafka, raw_topic=None).one(json.dumps(corpus_events()[0]).encode())
    assert [o[0] for o in kafka.produced[0]] == [EVENTS]


def test_a_raw_copy_over_the_openlineage_topics_limit_refuses_the_event_before_anything_is_sent(
    kafka: Kafka,
) -> None:
    event = corpus_events()[0]
    body = json.dumps(event, indent=8).encode()  # spaces: the raw copy is the larger one
    kafka.limits[RAW] = len(body) - 10
    with pytest.raises(IngestError) as err:
        _ingest(kafka).one(body)
    assert err.value.status == 413 and f"topic '{RAW}'" in str(err.value)
    result = _ingest(kafka).batch(json.dumps([event, event]).encode())  # as sent here, unindented: they fit
    assert result.successful == 2
    assert len(kafka.produced) == 1


def test_kafka_refusing_a_raw_copy_as_too_large_names_its_topic(kafka: Kafka) -> None:
    body = json.dumps(corpus_events()[0], indent=8).encode()
    ingest = _ingest(kafka)
    ingest.message_limit(topic=RAW)  # read while it still fits
    kafka.refuse, kafka.limits[RAW] = {0}, 2_000  # lowered since: Kafka refuses the copy
    with pytest.raises(IngestError) as err:
        ingest.one(body)
    assert err.value.status == 413 and f"topic '{RAW}' takes at most 2,000" in str(err.value)


# ---- the worker -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any = None
    timestamp: float | None = None


class Output:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes | None]] = []

    def publish(self, topic: str, key: bytes | None, value: bytes | None, *_: Any, **__: Any) -> None:
        self.published.append((topic, value))


class Table:
    def get(self, key: str) -> Any:
        return None

    def set(self, partition: int, key: str, value: Any) -> None: ...
    def delete(self, partition: int, key: str) -> None: ...


def _skipped() -> float:
    return REGISTRY.get_sample_value("upriver_processor_openlineage_events_total", {"result": "mapped_by_api"}) or 0


def test_the_worker_skips_the_apis_copies_and_maps_everything_else_on_the_topic() -> None:
    codecs = Codecs(event=make_codec("lineage_event"), edge=make_codec("edge"), run=make_codec("run"),
                    letter=make_codec("dead_letter"))  # fmt: skip
    output = Output()
    handler = EventHandler(Topics(events="ev", edges="ed", runs="ru", dlq="dl"), codecs, output, Table(), Table())
    raw = json.dumps(corpus_events()[0]).encode()
    before = _skipped()
    handler.translate_openlineage(
        [
            Msg("ol", 0, 0, None, raw, headers=[("upriver-mapped", b"1")]),  # aiokafka's pairs
            Msg("ol", 0, 1, None, raw, headers={"upriver-mapped": b"1"}),  # a mapping
            Msg("ol", 0, 2, None, raw),  # the Kafka transport's message: no headers
            Msg("ol", 0, 3, None, raw, headers=[("upriver-mapped", b"0"), ("x", None)]),
            Msg("ol", 0, 4, None, b"[not json", headers=[("upriver-mapped", b"1")]),  # skipped unread
        ],
        now=1_800_000_000_000,
    )
    assert _skipped() - before == 3
    assert [t for t, _ in output.published] == ["ev", "ev"]  # offsets 2 and 3, mapped; no dead letter
    assert codecs.event.decode(output.published[0][1] or b"")["run_id"] == corpus_events()[0]["run"]["runId"]


def _nested(event: dict[str, Any], levels: int) -> dict[str, Any]:
    """`event` with a run facet holding `levels` nested arrays: nested 3 + `levels` deep (event, run, facets)."""
    deep: Any = []
    for _ in range(levels - 1):
        deep = [deep]
    return {**event, "run": {**event["run"], "facets": {"odd": deep}}}


@pytest.mark.parametrize("raw_topic", [RAW, None])
def test_a_batch_refuses_each_event_nested_too_deep_alone_as_a_single_post_would(
    kafka: Kafka, raw_topic: str | None
) -> None:
    base = corpus_events()[0]
    at_limit, over, far_over = _nested(base, MAX_DEPTH - 3), _nested(base, MAX_DEPTH - 2), _nested(base, 900)
    events = [base, over, at_limit, far_over]
    result = _ingest(kafka, raw_topic).batch(json.dumps(events).encode())
    assert (result.received, result.successful) == (4, 2)
    assert [f["index"] for f in result.failures] == [1, 3]
    assert all(f"nested deeper than {MAX_DEPTH}" in f["reason"] for f in result.failures)
    [out] = kafka.produced
    mapped, raw = _split(out)
    assert [m[4] for m in mapped] == [0, 1]  # the two accepted events, in order
    assert len(raw) == (2 if raw_topic else 0)
    # the same verdicts as each event alone
    _ingest(kafka, raw_topic).one(json.dumps(at_limit).encode())
    for too_deep in (over, far_over):
        with pytest.raises(IngestError, match=f"nested deeper than {MAX_DEPTH}") as err:
            _ingest(kafka, raw_topic).one(json.dumps(too_deep).encode())
        assert err.value.status == 400
