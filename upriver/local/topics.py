"""Create the pipeline's topics (idempotent) and read a topic's message size limit. Partition counts must
match the processor's tables; every topic is created with the stack's one message limit (MAX_MESSAGE_BYTES)."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # the package re-exports it implicitly (mypy strict)
from confluent_kafka.cimpl import NewTopic

from schemas.openlineage import MAX_MESSAGE_BYTES
from upriver.settings import Topics

log = logging.getLogger(__name__)

# Every topic the stack creates takes messages up to the stack's limit (Kafka's default is 1,000,000 bytes).
TOPIC_CONFIG = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
# Bytes a one-record batch adds to key + value on the wire (v2 batch header 61, the record's varints and
# attributes ~30): what a topic's max.message.bytes is compared with.
RECORD_OVERHEAD = 128


def ensure_topics(kafka_config: dict[str, Any], topics: Topics, replication: int = 1) -> list[str]:
    """Create missing topics; returns the names created. Raises if Kafka refuses for another reason.
    Topics that already exist keep their configuration (a user's cluster: see `read_message_limit`)."""
    admin = AdminClient(kafka_config)
    wanted = [
        NewTopic(name, num_partitions=topics.partitions, replication_factor=replication, config=dict(TOPIC_CONFIG))
        for name in topics.names()
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
