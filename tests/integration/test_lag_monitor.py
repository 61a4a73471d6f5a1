"""upriver/deploy/lag.py against the session's real broker: the lag counts every partition (one the group never
committed from the log start), topics that do not exist are left out (and not created by asking), and the
monitor's stalled gauge grows while nothing commits and drops to 0 once the group has committed all."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import REGISTRY
from stack_support import wait_until

from upriver.deploy.kafka import TopicOffsets, measure, measure_offsets
from upriver.deploy.lag import LagMonitor

pytestmark = pytest.mark.integration

PARTITIONS = 4
PER_PARTITION = (5, 7, 11, 13)  # messages produced to partitions 0..3
COMMITTED = {0: 3, 1: 7}  # the group commits partitions 0 and 1 only


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    wait_until(check, timeout, what, every=0.1)


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"lag-monitor-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for partition, count in enumerate(PER_PARTITION):
        for i in range(count):
            producer.produce(name, value=f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    return name


def commit(bootstrap: str, group: str, offsets: dict[str, dict[int, int]]) -> None:
    """Commit `offsets` (topic -> partition -> offset) for `group`, synchronously, without consuming."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(t, p, o) for t, parts in offsets.items() for p, o in parts.items()]
        consumer.commit(offsets=tps, asynchronous=False)
    finally:
        consumer.close()


def offsets_reader(bootstrap: str, group: str) -> Consumer:
    """A Consumer of `group` that never subscribes, once the group's coordinator answers (it loads right after
    the broker starts; the admin API's ListConsumerGroupOffsets would crash the process on a NOT_COORDINATOR
    answer then, see upriver/deploy/lag.py)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.committed([TopicPartition("any", 0)], timeout=30)
    return consumer


def test_measure_counts_partitions_the_group_never_committed(kafka_bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    group = f"g-{uuid.uuid4().hex[:8]}"
    reader = offsets_reader(kafka_bootstrap, group)
    missing = f"lag-monitor-missing-{uuid.uuid4().hex[:8]}"

    # a group that never committed anything: its whole backlog
    assert measure(admin, group, [topic, missing]) == {topic: sum(PER_PARTITION)}

    commit(kafka_bootstrap, group, {topic: COMMITTED})
    expected = sum(PER_PARTITION) - sum(COMMITTED.values())  # 36 - 10: partitions 2, 3 from the log start
    assert measure(admin, group, [topic, missing]) == {topic: expected}
    for offsets in (measure_offsets(admin, group, [topic]), measure_offsets(admin, group, [topic], consumer=reader)):
        assert offsets == {topic: TopicOffsets(lag=expected, committed=sum(COMMITTED.values()))}
    reader.close()

    # asking about a topic does not create it (the local broker auto-creates on a named metadata request)
    assert missing not in admin.list_topics(timeout=10).topics


def test_the_stalled_gauge_grows_while_nothing_commits_and_drops_after_the_commit(
    kafka_bootstrap: str, topic: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    commit(kafka_bootstrap, group, {topic: COMMITTED})
    labels = {"group": group, "topic": topic}

    def gauge(name: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    monitor = LagMonitor({"bootstrap.servers": kafka_bootstrap}, {group: [topic]}, interval_s=0.2).start()
    try:
        wait_for(lambda: (gauge("upriver_consumer_stalled_seconds") or 0) > 1.5, "the stalled gauge to grow")
        assert gauge("upriver_consumer_lag") == sum(PER_PARTITION) - sum(COMMITTED.values())
        assert gauge("upriver_consumer_committed_offsets") == sum(COMMITTED.values())
        first = gauge("upriver_consumer_stalled_seconds") or 0
        wait_for(lambda: (gauge("upriver_consumer_stalled_seconds") or 0) > first + 0.5, "the gauge to keep growing")

        commit(kafka_bootstrap, group, {topic: dict(enumerate(PER_PARTITION))})
        wait_for(lambda: gauge("upriver_consumer_lag") == 0, "the lag to reach 0")
        assert gauge("upriver_consumer_stalled_seconds") == 0
        assert gauge("upriver_consumer_committed_offsets") == sum(PER_PARTITION)
        time.sleep(1)  # further rounds with lag 0 stay at 0
        assert gauge("upriver_consumer_stalled_seconds") == 0
        assert monitor.alive() and monitor.failure is None
    finally:
        monitor.stop()
