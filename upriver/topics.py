"""Create the pipeline's topics (idempotent). Partition counts must match the processor's tables."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from upriver.settings import Topics

log = logging.getLogger(__name__)


def ensure_topics(kafka_config: dict[str, Any], topics: Topics, replication: int = 1) -> list[str]:
    """Create missing topics; returns the names created. Raises if Kafka refuses for another reason."""
    admin = AdminClient(kafka_config)
    wanted = [
        NewTopic(name, num_partitions=topics.partitions, replication_factor=replication) for name in topics.names()
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
