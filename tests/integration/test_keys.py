"""`schemas.keys.partition_of` against a real broker: the partition librdkafka's default partitioner gives a
keyed message, as the emitters, the HTTP ingest and the worker's publisher produce them. The worker places the
state of an OpenLineage run it handles in place on that partition (processors/lineage/handling.py), so the two
must agree for every run id."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from processors.worker.publisher import Publisher
from schemas.keys import partition_key, partition_of

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("partitions", [1, 4, 8, 12])
def test_partition_of_is_where_librdkafka_puts_a_run_ids_messages(kafka_bootstrap: str, partitions: int) -> None:
    topic = f"keys-{partitions}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    run_ids = [str(uuid.uuid4()) for _ in range(300)] + ["0190c1b2-0000-7000-8000-000000000001", "run é/∂", "x"]
    landed: dict[bytes, int] = {}

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        landed[msg.key()] = msg.partition()

    producer = Producer({"bootstrap.servers": kafka_bootstrap})  # the default partitioner, as every emitter's
    for run_id in run_ids:
        producer.produce(topic, key=partition_key(run_id), value=b"v", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert len(landed) == len(run_ids)
    assert {k: partition_of(k, partitions) for k in landed} == landed
    if partitions > 1:
        assert len(set(landed.values())) == partitions  # the keys spread: the comparison means something


def test_the_worker_publisher_places_keys_the_same_way(kafka_bootstrap: str) -> None:
    """The worker's own producer (processors/worker/publisher.py), with no partition given."""
    topic = f"keys-pub-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(30)
    publisher = Publisher({"bootstrap.servers": kafka_bootstrap})
    keys = [partition_key(str(uuid.uuid4())) for _ in range(120)]
    for key in keys:
        publisher.publish(topic, key, b"v")
    publisher.flush_or_raise()
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(6)])
    seen: dict[bytes, int] = {}
    for _ in range(120):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen[msg.key()] = msg.partition()
        if len(seen) == len(keys):
            break
    consumer.close()
    assert {k: partition_of(k, 6) for k in keys} == seen


def test_an_empty_key_has_no_partition() -> None:
    with pytest.raises(ValueError):
        partition_of(b"", 4)
