"""LineageEmitter: publishes Avro LineageEvents to Kafka with an idempotent confluent-kafka producer.

Keys follow `schemas.keys.partition_key` (a run's events stay ordered, duplicates co-partition).
Delivery failures are collected from librdkafka's callbacks and raised by `flush()`; nothing here
decides lineage.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas.codec import Codec, make_codec
from schemas.keys import partition_key
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent

log = logging.getLogger(__name__)

# Why each default: idempotence and acks=all so a retried produce never duplicates or loses a record
# (librdkafka's default for enable.idempotence is false); lz4 is cheap on 2 cores; a short linger
# lets batches fill at high volume without hurting latency much.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 10,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
}


class DeliveryError(RuntimeError):
    """Some events were not delivered; `failures` lists (key, error) so the caller can re-emit them."""

    def __init__(self, failures: list[tuple[bytes | None, str]]) -> None:
        self.failures = failures
        sample = "; ".join(f"{k!r}: {e}" for k, e in failures[:3])
        super().__init__(f"{len(failures)} lineage event(s) not delivered ({sample})")


@dataclass
class EmitterStats:
    sent: int = 0
    delivered: int = 0
    failed: int = 0


def new_event(
    job_namespace: str,
    job_name: str,
    event_type: EventType | str,
    *,
    run_id: str,
    job_kind: JobKind | str = JobKind.OTHER,
    inputs: Iterable[ArtifactRef] = (),
    outputs: Iterable[ArtifactRef] = (),
    producer: str = "https://upriver.dev/sdk/python",
    parent_run_id: str | None = None,
    facets: str = "{}",
    event_time_ms: int | None = None,
) -> LineageEvent:
    """Build an event with its identity fixed now (a fresh UUID), so every retry carries the same id."""
    return LineageEvent(
        event_id=str(uuid.uuid4()),
        event_time=event_time_ms if event_time_ms is not None else time.time_ns() // 1_000_000,
        producer=producer,
        event_type=EventType(event_type),
        job_namespace=job_namespace,
        job_name=job_name,
        job_kind=JobKind(job_kind),
        run_id=run_id,
        parent_run_id=parent_run_id,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        facets=facets,
    )


class LineageEmitter:
    """Publishes lineage events; use as a context manager, or call `flush()`/`close()` yourself."""

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        topic: str,
        *,
        codec: Codec | None = None,
        registry_url: str = "",
        producer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self._codec = codec or make_codec("lineage_event", registry_url, topic)
        conf = {**PRODUCER_DEFAULTS, **kafka_config, **(producer_overrides or {})}
        conf["enable.idempotence"] = True  # not negotiable: dedup and ordering rely on it
        self._config = conf  # kept for inspection; may hold secrets, so never log it
        self._producer = Producer(conf)
        self._failures: list[tuple[bytes | None, str]] = []
        self.stats = EmitterStats()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
            return
        self.stats.failed += 1
        self._failures.append((msg.key(), str(err)))
        log.error("lineage event not delivered to %s (key %r): %s", self.topic, msg.key(), err)

    def emit(self, event: LineageEvent) -> None:
        """Queue one event (non-blocking unless the local queue is full, then it waits for room)."""
        self.send_encoded(self._codec.encode(event.to_record()), partition_key(event.run_id))

    def emit_many(self, events: Iterable[LineageEvent]) -> int:
        n = 0
        for event in events:
            self.emit(event)
            n += 1
        return n

    def send_encoded(self, value: bytes, key: bytes | None) -> None:
        """Queue an already-encoded payload as is (replays, tests of bad input)."""
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                # Back-pressure: the local queue is full; serve delivery reports to make room.
                self._producer.poll(0.05)
        self.stats.sent += 1
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raise DeliveryError for any that failed or are still queued."""
        remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append((None, f"{remaining} event(s) still queued after {timeout}s"))
        if failures:
            raise DeliveryError(failures)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)

    def __enter__(self) -> LineageEmitter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
