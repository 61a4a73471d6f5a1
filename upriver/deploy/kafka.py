"""Every Kafka admin request Upriver makes, in the one module of upriver/deploy and upriver/local that
imports confluent-kafka: create the pipeline's topics (idempotent), read a topic's message size limit,
measure a group's lag and committed offsets (the lag monitor), and the readiness checks of the local
stack (does the broker answer, is the worker's group stable with partitions assigned).

Partition counts must match the processor's tables; every topic is created with the stack's one message
limit (MAX_MESSAGE_BYTES)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from confluent_kafka.admin._config import ConfigResource  # the package re-exports it implicitly (mypy strict)
from confluent_kafka.cimpl import NewTopic

from schemas.openlineage import MAX_MESSAGE_BYTES
from upriver.settings import Topics

log = logging.getLogger(__name__)

__all__ = ["AdminClient", "Consumer"]  # the lag monitor and the local stack hold them

# Every topic the stack creates takes messages up to the stack's limit (Kafka's default is 1,000,000 bytes).
TOPIC_CONFIG = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
# The tags topic is the record of the Marquez tag writes (the tag_changes table is rebuilt from it): kept forever.
KEPT_FOREVER = {"retention.ms": "-1"}
# Bytes a one-record batch adds to key + value on the wire (v2 batch header 61, the record's varints and
# attributes ~30): what a topic's max.message.bytes is compared with.
RECORD_OVERHEAD = 128


def ensure_topics(kafka_config: dict[str, Any], topics: Topics, replication: int = 1) -> list[str]:
    """Create missing topics; returns the names created. Raises if Kafka refuses for another reason.
    Topics that already exist keep their configuration (a user's cluster: see `read_message_limit`)."""
    admin = AdminClient(kafka_config)
    wanted = [
        NewTopic(name, num_partitions=topics.partitions, replication_factor=replication, config=config)
        for name in topics.names()
        for config in [{**TOPIC_CONFIG, **(KEPT_FOREVER if name == topics.tags else {})}]
    ]
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=30).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


def record_bytes(key: bytes | None, value: bytes | None) -> int:
    """The size one message is held to against a topic's max.message.bytes (uncompressed, alone in its batch)."""
    return len(key or b"") + len(value or b"") + RECORD_OVERHEAD


def effective_limit(topic_limit: int | None, producer_limit: int = MAX_MESSAGE_BYTES) -> int:
    """The largest message that reaches a topic: its max.message.bytes (None: unknown) capped by the producer's."""
    return producer_limit if topic_limit is None else min(topic_limit, producer_limit)


def too_large(size: int, limit: int, topic: str) -> str:
    """The reason given for a message Kafka will not (or did not) take."""
    return (
        f"event is {size:,} bytes as a Kafka message; topic {topic!r} takes at most {limit:,}"
        " (its max.message.bytes; docs/openlineage.md, size limits)"
    )


def read_message_limit(kafka_config: dict[str, Any], topic: str, timeout: float = 5.0) -> int | None:
    """The topic's max.message.bytes as the broker applies it (the topic's own setting or the broker's
    message.max.bytes); None when it cannot be read (no such topic, no DescribeConfigs right, Kafka away)."""
    admin = AdminClient({**kafka_config, "log_level": 3})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    try:
        configs = admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
        return int(configs["max.message.bytes"].value)
    except Exception as exc:  # KafkaException, a timeout, a missing or odd entry: fall back to the producer's limit
        log.warning("cannot read max.message.bytes of topic %s: %s", topic, exc)
        return None


@dataclass(frozen=True)
class TopicOffsets:
    """One group's position on one topic: messages not consumed, and its committed offsets' sum."""

    lag: int
    committed: int  # partitions never committed add nothing


def _partitions(admin: AdminClient, topics: Sequence[str], timeout: float) -> list[tuple[str, int]]:
    """Every partition of those `topics` that exist, from one metadata request.

    DescribeTopics, not `list_topics(topic)`: a metadata request for a named topic makes a broker with
    `auto.create.topics.enable` (the local one) create it, with the broker's default partition count.
    """
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return []
    found: list[tuple[str, int]] = []
    for topic, future in admin.describe_topics(TopicCollection(wanted), request_timeout=timeout).items():
        try:
            description = future.result(timeout)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue  # not created yet: nothing to lag behind
            raise
        found.extend((topic, p.id) for p in description.partitions)
    return sorted(found)


def measure_offsets(
    admin: AdminClient,
    group: str,
    topics: Sequence[str],
    timeout: float = 10.0,
    *,
    consumer: Consumer | None = None,
) -> dict[str, TopicOffsets]:
    """Lag and committed offsets' sum per topic of `group` over `topics` (topics that do not exist are left out).

    Four requests whatever the number of topics: metadata, the group's offsets, log ends, log starts. The
    group's offsets come from `consumer` (a Consumer with `group.id` = `group` that never subscribes) when
    given, else from the admin API's ListConsumerGroupOffsets, which crashes the process (librdkafka 2.16,
    confluentinc/librdkafka#5040: a NOT_COORDINATOR answer makes an admin client dereference its missing
    consumer group) when the group's coordinator moves or is still loading (a broker just started or
    restarted); a Consumer handles that answer by finding the coordinator again. LagMonitor uses one.
    """
    partitions = _partitions(admin, topics, timeout)
    if not partitions:
        return {}
    wanted = [TopicPartition(t, p) for t, p in partitions]
    if consumer is not None:
        answered = consumer.committed(wanted, timeout=timeout)
    else:
        request = ConsumerGroupTopicPartitions(group, wanted)
        answered = admin.list_consumer_group_offsets([request])[group].result(timeout).topic_partitions or []
    offsets: dict[tuple[str, int], int] = {}
    for tp in answered:
        if tp.error is not None:
            raise KafkaException(tp.error)
        offsets[(tp.topic, tp.partition)] = tp.offset
    latest, earliest = OffsetSpec.latest(), OffsetSpec.earliest()  # type: ignore[no-untyped-call]
    ends = admin.list_offsets({TopicPartition(t, p): latest for t, p in partitions}, request_timeout=timeout)
    starts = admin.list_offsets({TopicPartition(t, p): earliest for t, p in partitions}, request_timeout=timeout)
    lag: dict[str, int] = {}
    sums: dict[str, int] = {}
    for topic, partition in partitions:
        end = ends[TopicPartition(topic, partition)].result(timeout).offset
        start = starts[TopicPartition(topic, partition)].result(timeout).offset
        offset = offsets.get((topic, partition), -1)
        behind = end - (offset if offset >= 0 else start)
        lag[topic] = lag.get(topic, 0) + max(0, behind)
        sums[topic] = sums.get(topic, 0) + max(0, offset)
    return {topic: TopicOffsets(lag[topic], sums[topic]) for topic in lag}


def measure(admin: AdminClient, group: str, topics: Sequence[str], timeout: float = 10.0) -> dict[str, int]:
    """Lag per topic of `group` over `topics`, every partition counted (topics that do not exist are left out)."""
    return {topic: o.lag for topic, o in measure_offsets(admin, group, topics, timeout).items()}


_PERMANENT_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


def is_permanent(exc: BaseException) -> bool:
    """Whether a failed measurement will fail again however often it is retried."""
    if not isinstance(exc, KafkaException):
        return False  # TimeoutError and the like: the broker may be restarting
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and (err.fatal() or err.code() in _PERMANENT_CODES)


def broker_answers(bootstrap_servers: str, timeout: float = 5.0) -> None:
    """Raise unless a metadata request to `bootstrap_servers` is answered (KafkaException while the
    controller settles)."""
    AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(timeout=timeout)


def assigned_members(admin: AdminClient, group: str, timeout: float = 5.0) -> int:
    """How many members of consumer group `group` hold partitions; 0 unless the group is stable (raises
    while it does not exist)."""
    desc = admin.describe_consumer_groups([group])[group].result(timeout=timeout)
    if not str(desc.state).endswith("STABLE"):
        return 0
    return sum(1 for m in desc.members if m.assignment.topic_partitions)


def group_assigned(admin: AdminClient, group: str, timeout: float = 5.0) -> bool:
    """Whether consumer group `group` is stable with partitions assigned (raises while it does not exist)."""
    return assigned_members(admin, group, timeout) > 0
