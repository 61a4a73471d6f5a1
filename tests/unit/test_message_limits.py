"""The stack's one Kafka message limit (schemas.openlineage.MAX_MESSAGE_BYTES) is what every place uses, a
documented-size event fits it once mapped, and the ingest's size answers (issue 13, item 7). No Kafka here:
the topic's limit is stubbed; tests/integration/test_large_events.py runs the same against a real broker."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from processors.lineage import runs
from processors.worker.publisher import DEFAULTS
from schemas.codec import make_codec
from schemas.openlineage import MAX_EVENT_BYTES, MAX_MESSAGE_BYTES, to_record
from upriver.deploy.kafka import RECORD_OVERHEAD, TOPIC_CONFIG, effective_limit, record_bytes, too_large
from upriver.http import ingest as ingest_module
from upriver.http.ingest import IngestError, OpenLineageIngest, batch_events
from upriver.local.broker import LocalBroker

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = {"bootstrap.servers": "127.0.0.1:9"}


def spark_event(size: int) -> dict[str, Any]:
    """A Spark COMPLETE event (one input, one output) with a logical-plan run facet of about `size` bytes."""
    node = {"class": "org.apache.spark.sql.catalyst.plans.logical.Project", "num-children": 1, "child": 0,
            "projectList": [[{"class": "org.apache.spark.sql.catalyst.expressions.AttributeReference",
                              "name": "column", "dataType": "string", "nullable": True, "metadata": {},
                              "exprId": {"product-class": "org.apache.spark.sql.catalyst.expressions.ExprId",
                                         "id": 1, "jvmId": "6b1d3b5c-9a4e-4d8e-a1b2-3c4d5e6f7a8b"}}]]}  # fmt: skip
    step = len(json.dumps(node, separators=(",", ":"))) + 1
    return {
        "eventType": "COMPLETE", "eventTime": "2026-06-01T00:00:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark",
        "run": {"runId": str(uuid.uuid4()), "facets": {"spark.logicalPlan": {"plan": [node] * (size // step)}}},
        "job": {"namespace": "default", "name": "spark_job"},
        "inputs": [{"namespace": "hdfs://nn", "name": "/warehouse/t1"}],
        "outputs": [{"namespace": "hdfs://nn", "name": "/warehouse/t2"}],
    }  # fmt: skip


def compact(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


# ---- one constant everywhere -----------------------------------------------------------------------------


def test_the_message_limit_holds_an_event_of_the_documented_size() -> None:
    assert MAX_MESSAGE_BYTES > MAX_EVENT_BYTES > 1_000_000  # Kafka's default message limit
    doc = spark_event(MAX_EVENT_BYTES - 2_000)
    assert MAX_EVENT_BYTES - 4_000 < len(compact(doc)) <= MAX_EVENT_BYTES
    record = to_record(doc)
    avro = make_codec("lineage_event").encode(record)
    state, _ = runs.merge(None, record)
    run_record = make_codec("run").encode(runs.run_record(state, int(time.time() * 1000)))
    changelog = json.dumps(state.to_json()).encode()  # the worker's run-state changelog value
    for size in (len(avro), len(run_record), len(changelog)):
        assert record_bytes(record["run_id"].encode(), b"x" * size) <= MAX_MESSAGE_BYTES


def test_every_place_uses_the_one_limit(tmp_path: Path) -> None:
    assert {"max.message.bytes": str(MAX_MESSAGE_BYTES)} == TOPIC_CONFIG
    assert DEFAULTS["message.max.bytes"] == MAX_MESSAGE_BYTES
    broker = LocalBroker(tmp_path, tmp_path / "cache")
    lines = broker._write_config(19092, 19093).read_text().splitlines()
    assert f"message.max.bytes={MAX_MESSAGE_BYTES}" in lines
    assert f"replica.fetch.max.bytes={MAX_MESSAGE_BYTES}" in lines


def test_the_compose_broker_and_topics_use_the_one_limit() -> None:
    services = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())["services"]
    env = services["kafka"]["environment"]
    assert env["KAFKA_MESSAGE_MAX_BYTES"] == env["KAFKA_REPLICA_FETCH_MAX_BYTES"] == str(MAX_MESSAGE_BYTES)
    assert f"--config max.message.bytes={MAX_MESSAGE_BYTES} " in " ".join(services["init-topics"]["command"])


# ---- pure helpers ----------------------------------------------------------------------------------------


def test_effective_limit_is_the_topics_capped_by_the_producers() -> None:
    assert effective_limit(None) == MAX_MESSAGE_BYTES
    assert effective_limit(1_000_000) == 1_000_000
    assert effective_limit(50 * MAX_MESSAGE_BYTES) == MAX_MESSAGE_BYTES
    assert effective_limit(None, producer_limit=5_000) == 5_000


def test_record_bytes_and_the_reason() -> None:
    assert record_bytes(b"key", b"value") == 8 + RECORD_OVERHEAD
    assert record_bytes(None, None) == RECORD_OVERHEAD
    reason = too_large(1_500_128, 1_000_000, "upriver.events.v1")
    assert "1,500,128" in reason and "1,000,000" in reason and "'upriver.events.v1'" in reason
    assert "max.message.bytes" in reason


def test_a_batch_event_is_measured_as_sent() -> None:
    doc = spark_event(100_000)
    spaced = json.dumps({**doc, "q": "é"}, indent=2, ensure_ascii=False).encode()
    [(first, sent_first), (second, sent_second)] = batch_events(b"[" + compact(doc) + b" ,\n " + spaced + b"]")
    assert (first, second) == (doc, {**doc, "q": "é"})
    assert sent_first == compact(doc) and sent_second == spaced  # whitespace and UTF-8 as sent


# ---- the ingest's answers (Kafka not needed: the topic's limit is stubbed) --------------------------------


@dataclass
class Reads:
    """What the stubbed `read_message_limit` answers, one per call (the last repeats), and what it answered."""

    answers: list[int | None] = field(default_factory=lambda: [1_000_000])
    calls: list[int | None] = field(default_factory=list)

    def __call__(self, _config: Any, _topic: str, timeout: float = 5.0) -> int | None:
        self.calls.append(self.answers[min(len(self.calls), len(self.answers) - 1)])
        return self.calls[-1]


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    stub = Reads()
    monkeypatch.setattr(ingest_module, "read_message_limit", stub)
    monkeypatch.setattr(ingest_module, "LIMIT_REFRESH_S", 0.0)
    return stub


def _ingest(config: dict[str, Any] | None = None) -> OpenLineageIngest:
    return OpenLineageIngest(config or UNREACHABLE, "events", make_codec("lineage_event"), timeout_s=2)


def test_an_event_over_the_topics_limit_is_413_naming_it(reads: Reads) -> None:
    ingest = _ingest()
    with pytest.raises(IngestError) as err:
        ingest.one(compact(spark_event(1_500_000)))
    assert err.value.status == 413 and "1,000,000" in str(err.value) and "'events'" in str(err.value)
    assert reads.calls == [1_000_000, 1_000_000]  # read on first use, and again before refusing


def test_a_raised_topic_limit_is_read_again_before_refusing(reads: Reads, monkeypatch: pytest.MonkeyPatch) -> None:
    reads.answers = [1_000_000, 2_000_000]
    ingest = _ingest()
    published: list[list[tuple[bytes, bytes]]] = []
    monkeypatch.setattr(ingest, "publish", lambda messages, *_: published.append(messages) or set())
    ingest.one(compact(spark_event(1_500_000)))
    assert len(published) == 1 and reads.calls == [1_000_000, 2_000_000]


def test_an_unreadable_limit_falls_back_to_the_producers(reads: Reads) -> None:
    reads.answers = [None]
    assert _ingest().message_limit() == MAX_MESSAGE_BYTES
    assert _ingest({**UNREACHABLE, "message.max.bytes": 5_000}).message_limit() == 5_000


def test_librdkafkas_own_refusal_is_413_not_500(reads: Reads, monkeypatch: pytest.MonkeyPatch) -> None:
    """produce() raises MSG_SIZE_TOO_LARGE itself when a message is over the producer's message.max.bytes."""
    reads.answers = [None]
    ingest = _ingest({**UNREACHABLE, "message.max.bytes": 5_000})
    monkeypatch.setattr(ingest, "oversized", lambda _message, *_: None)  # as if the limit read had said it fits
    assert ingest.publish([(b"k", b"x" * 10_000)]) == {0}
    with pytest.raises(IngestError) as err:
        ingest.one(compact(spark_event(20_000)))
    assert err.value.status == 413 and "5,000" in str(err.value)


def test_a_batch_refuses_only_its_oversized_events(reads: Reads, monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[list[tuple[bytes, bytes]]] = []

    def ingest() -> OpenLineageIngest:
        made = _ingest()
        monkeypatch.setattr(made, "publish", lambda messages, *_: published.append(messages) or set())
        return made

    big, small = spark_event(1_500_000), spark_event(20_000)
    just_under = spark_event(MAX_EVENT_BYTES - 2_000)  # over the limit with json.dumps's spaces
    reads.answers = [MAX_MESSAGE_BYTES]
    result = ingest().batch(compact([just_under, small]))
    assert (result.successful, result.failures) == (2, [])
    reads.answers, reads.calls = [1_000_000], []
    result = ingest().batch(compact([small, big]))
    assert result.successful == 1 and [f["index"] for f in result.failures] == [1]
    assert "1,000,000" in result.failures[0]["reason"]
    assert [len(m) for m in published] == [2, 1]
