"""The local KRaft broker: real produce/consume, restart on the same data dir, clean stop."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from upriver.local.broker import LocalBroker

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


@pytest.mark.slow
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


def test_a_runs_events_share_a_partition(kafka_bootstrap: str) -> None:
    """The partition-key policy (schemas/keys.py) on a real multi-partition topic."""
    from confluent_kafka.cimpl import NewTopic

    from producers.emitter import LineageEmitter, new_event

    topic = f"keys-{uuid.uuid4().hex}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    with LineageEmitter({"bootstrap.servers": kafka_bootstrap}, topic) as emitter:
        for run in range(6):
            for step in ("START", "RUNNING", "COMPLETE"):
                emitter.emit(new_event("ns", "job", step, run_id=f"run-{run}"))
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    partitions: dict[bytes, set[int]] = {}
    order: dict[bytes, list[int]] = {}
    for _ in range(80):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            partitions.setdefault(msg.key(), set()).add(msg.partition())
            order.setdefault(msg.key(), []).append(msg.offset())
        if sum(len(v) for v in order.values()) == 18:
            break
    consumer.close()
    assert len(partitions) == 6
    assert all(len(p) == 1 for p in partitions.values())  # one run, one partition
    assert len({next(iter(p)) for p in partitions.values()}) > 1  # runs spread over partitions
