"""The local KRaft broker: real produce/consume, restart on the same data dir, clean stop."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from upriver.broker import LocalBroker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _roundtrip(bootstrap: str, topic: str, value: bytes | None) -> list[bytes]:
    """Produce `value` (if any) idempotently, then read the whole topic from the start."""
    if value is not None:
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
        producer.produce(topic, value=value)
        assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    seen: list[bytes] = []
    for _ in range(60):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen.append(msg.value())
        elif seen:
            break
    consumer.close()
    return seen


def test_session_broker_round_trip(kafka_bootstrap: str) -> None:
    topic = f"rt-{uuid.uuid4().hex}"
    assert _roundtrip(kafka_bootstrap, topic, b"hello") == [b"hello"]


def test_restart_keeps_data_and_address(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", ROOT / ".cache")
    first = broker.start()
    topic = "kept"
    admin = AdminClient({"bootstrap.servers": first})  # keep a reference until the future resolves
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    assert _roundtrip(first, topic, b"before-restart") == [b"before-restart"]
    broker.stop()
    assert not broker.is_running()
    broker.stop()  # idempotent
    second = broker.start()
    try:
        assert second == first
        assert topic in AdminClient({"bootstrap.servers": second}).list_topics(timeout=10).topics
        assert _roundtrip(second, topic, None) == [b"before-restart"]
    finally:
        broker.stop()
