"""The SDK against a real broker, and against no broker at all: it never blocks or raises."""

from __future__ import annotations

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


def test_events_arrive_on_the_topic(kafka_bootstrap: str) -> None:
    topic = f"sdk-{uuid.uuid4().hex}"
    with Emitter.kafka(kafka_bootstrap, topic, namespace="pipelines.sdk") as emitter:
        with emitter.run("train", "TRAIN") as run:
            run.read("dataset:wh/raw").wrote("model:reg/m@v1")
        emitter.drift("feature:fs/f", "psi", 0.4, 0.2)
        report = emitter.flush(timeout=30)
    assert report.ok and report.delivered == 3, str(report)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[LineageEvent] = []
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(LineageEvent.from_record(CODEC.decode(msg.value())))
    consumer.close()
    assert sorted(e.event_type.value for e in got) == ["COMPLETE", "DRIFT", "START"]
    complete = next(e for e in got if e.event_type is EventType.COMPLETE)
    assert complete.run_id == run.run_id and complete.outputs[0].version == "v1"


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
    assert "NOT all delivered" in str(report)


def test_a_full_buffer_drops_and_counts() -> None:
    transport = KafkaTransport(_closed_port(), "t", buffer_events=10, message_timeout_ms=500)
    emitter = Emitter(transport)
    for i in range(100):
        emitter.drift("feature:fs/f", "psi", float(i), 0.5)
    report = emitter.flush(timeout=0.5)
    assert report.sent == 10 and report.dropped == 90
    assert report.sent + report.dropped == 100
