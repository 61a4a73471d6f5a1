"""The SDK against a real broker, and against no broker at all: it never blocks or raises."""

from __future__ import annotations

import logging
import socket
import time
import uuid

import pytest
from confluent_kafka import Consumer

from producers.sdk import Emitter
from producers.transports import KafkaTransport
from schemas.codec import SingleObjectCodec
from schemas.model import EventType, LineageEvent

pytestmark = pytest.mark.integration
CODEC = SingleObjectCodec("lineage_event")


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed


def _read_topic(bootstrap: str, topic: str, expect: int, seconds: float = 30) -> list[LineageEvent]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[LineageEvent] = []
    deadline = time.monotonic() + seconds
    while len(got) < expect and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(LineageEvent.from_record(CODEC.decode(msg.value())))
    consumer.close()
    return got


def test_events_arrive_on_the_topic(kafka_bootstrap: str) -> None:
    topic = f"sdk-{uuid.uuid4().hex}"
    with Emitter.kafka(kafka_bootstrap, topic, namespace="pipelines.sdk") as emitter:
        with emitter.run("train", "TRAIN") as run:
            run.read("dataset:wh/raw").wrote("model:reg/m@v1")
        emitter.drift("feature:fs/f", "psi", 0.4, 0.2)
        report = emitter.flush(timeout=30)
    assert report.ok and report.delivered == 3, str(report)
    got = _read_topic(kafka_bootstrap, topic, 3)
    assert sorted(e.event_type.value for e in got) == ["COMPLETE", "DRIFT", "START"]
    complete = next(e for e in got if e.event_type is EventType.COMPLETE)
    assert complete.run_id == run.run_id and complete.outputs[0].version == "v1"


def test_an_event_over_1mb_fails_alone_inside_the_run_and_the_rest_arrive(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"sdk-big-{uuid.uuid4().hex}"
    blob = "x" * 1_100_000  # over librdkafka's message.max.bytes (1,000,000) however it is encoded
    emitter = Emitter.kafka(kafka_bootstrap, topic, namespace="pipelines.sdk")
    steps: list[str] = []
    with caplog.at_level(logging.WARNING, logger="producers.transports"), emitter.run("train", "TRAIN") as run:
        run.read("dataset:wh/raw")
        emitter.quality("dataset:wh/raw", "rows", 10.0, threshold=1.0)
        with emitter.run("dump", facets={"blob": blob}) as big:  # its START and COMPLETE are both over 1 MB
            steps.append("inside the big run")
        steps.append("after the big run")
        run.wrote("model:reg/m@v1")
    report = emitter.flush(timeout=30)
    assert steps == ["inside the big run", "after the big run"]
    # 5 events: train START, QUALITY, dump START, dump COMPLETE, train COMPLETE; the two dump ones fail.
    assert (report.sent, report.delivered, report.failed, report.dropped, report.pending) == (5, 3, 2, 0, 0), report
    assert not report.ok and "all delivered" not in str(report)
    assert len(report.lost) == 2
    for lost in report.lost:
        assert lost.size is not None and len(blob) < lost.size < len(blob) + 1_000
        assert lost.reason == f"too large: {lost.size} bytes, over message.max.bytes = 1000000 (MSG_SIZE_TOO_LARGE)"
        logged = [r for r in caplog.records if lost.event_id in r.getMessage()]
        assert len(logged) == 1 and f"({lost.size} bytes)" in logged[0].getMessage()
    got = _read_topic(kafka_bootstrap, topic, 3)
    assert sorted(e.event_type.value for e in got) == ["COMPLETE", "QUALITY", "START"]
    assert big.run_id not in {e.run_id for e in got}
    assert {e.run_id for e in got if e.event_type is not EventType.QUALITY} == {run.run_id}
    assert next(e for e in got if e.event_type is EventType.QUALITY).parent_run_id == run.run_id
    assert not {lost.event_id for lost in report.lost} & {e.event_id for e in got}


def test_kafka_down_never_blocks_or_raises() -> None:
    emitter = Emitter.kafka(_closed_port(), "t", message_timeout_ms=500)
    started = time.monotonic()
    with emitter.run("job") as run:
        run.read("dataset:a/b")
    for i in range(1_000):
        emitter.drift("feature:fs/f", "psi", i / 1000, 0.5)
    assert time.monotonic() - started < 2.0
    report = emitter.flush(timeout=1)
    assert not report.ok and report.pending + report.failed > 0
    assert report.sent == 2 + 1_000 == report.delivered + report.failed + report.dropped + report.pending
    assert "all delivered" not in str(report) and str(report).startswith("INCOMPLETE")


def test_a_full_buffer_drops_and_counts() -> None:
    transport = KafkaTransport(_closed_port(), "t", buffer_events=10, message_timeout_ms=500)
    emitter = Emitter(transport)
    for i in range(100):
        emitter.drift("feature:fs/f", "psi", float(i), 0.5)
    report = emitter.flush(timeout=0.5)
    assert report.sent == 100 and report.dropped == 90 and report.failed + report.pending == 10
    assert dict(report.reasons)["local buffer full (is Kafka reachable?)"] == 90
