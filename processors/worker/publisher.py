"""Publishes the processor's output (edges, dead letters) through librdkafka, ~2 µs a message.

One awaited faust send per event caps faust at ~3.9k events/s here (benchmarks/faust_send.py).
Delivery is guaranteed by the wiring: `flush_or_raise()` runs before every offset commit, so no event
counts as done before its output is acknowledged by Kafka. No decisions here, and no faust import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from processors.lineage.handling import OutputTooLargeError, OutputUnavailableError
from schemas.openlineage import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

# Same reasoning as the emitter's defaults: never duplicate or reorder on retry. A 50 ms linger: each input
# message fans out to ~6 outputs over ~7 topics x their partitions, so at 5 ms the broker took many small batches
# and spent 1.4-1.9 ms of CPU an OpenLineage message; at 50 ms 0.9-1.1 ms, the burst 325-380 -> 405-451 msgs/s
# (docs/performance.md, "The publisher's linger"). It adds at most 50 ms to emit -> queryable.
DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 50,
    "queue.buffering.max.messages": 500_000,
    # The stack's one message limit (its topics are created with it); a larger output fails MSG_SIZE_TOO_LARGE.
    "message.max.bytes": MAX_MESSAGE_BYTES,
}


class PublishError(RuntimeError):
    """Output was not acknowledged: the worker must stop before committing (its input is replayed)."""


class Publisher:
    def __init__(self, kafka_config: Mapping[str, Any]) -> None:
        conf = {**DEFAULTS, **kafka_config, "enable.idempotence": True}
        self._producer = Producer(conf)
        self._failures: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}: {err}")

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one message (value None is a tombstone); partition None lets the key choose; timestamp
        (epoch ms) None lets the producer stamp it."""
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        if timestamp:
            extra["timestamp"] = timestamp
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery, **extra
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # back-pressure: wait for room in librdkafka's queue
            except KafkaException as exc:  # refused at once: the message's size, or the client's state
                error = exc.args[0] if exc.args else None
                if isinstance(error, KafkaError) and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise OutputTooLargeError(f"{topic}: {error.str()}") from exc
                raise OutputUnavailableError(f"{topic}: {exc}") from exc
        self._producer.poll(0)

    def flush_or_raise(self, timeout: float = 60.0) -> None:
        """Wait until everything published is acknowledged; raise PublishError otherwise."""
        remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} message(s) still queued after {timeout}s")
        if failures:
            log.error("output not delivered, refusing to commit: %s", "; ".join(failures[:5]))
            raise PublishError(f"{len(failures)} output message(s) not delivered: {failures[0]}")
