"""LineageEmitter: publishes Avro LineageEvents to Kafka with an idempotent confluent-kafka producer.

Keys follow `schemas.keys.partition_key` (a run's events stay ordered, duplicates co-partition).
Failures are collected, each with librdkafka's reason: events produce() refuses (e.g. over
message.max.bytes) at once, failed deliveries from librdkafka's callbacks; `flush()` raises them all
as one DeliveryError, so one bad event never stops the others. Nothing here decides lineage.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from producers.kafka import (
    PRODUCER_DEFAULTS,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    delivery_failure_reason,
    produce_failure_reason,
)
from schemas.codec import Codec, make_codec
from schemas.keys import partition_key
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent

log = logging.getLogger(__name__)

class DeliveryError(RuntimeError):
    """Some events were not delivered: `failures` lists (key, reason) for each one Kafka or librdkafka
    refused, so the caller can re-emit them; `pending` counts those still queued when flush gave up."""

    def __init__(self, failures: list[tuple[bytes | None, str]], pending: int = 0) -> None:
        self.failures = failures
        self.pending = pending
        parts = [f"{len(failures)} failed ({'; '.join(f'{k!r}: {e}' for k, e in failures[:3])})"] if failures else []
        parts += [f"{pending} still queued"] if pending else []
        super().__init__(f"{len(failures) + pending} lineage event(s) not delivered: " + ", ".join(parts))


@dataclass
class EmitterStats:
    """`sent`: every event handed to emit/send_encoded; `failed`: refused by produce() or not delivered.
    sent - delivered - failed are still queued."""

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
        self._max_bytes = int(conf.get("message.max.bytes", 1_000_000))
        self._producer = Producer(conf)
        self._failures: list[tuple[bytes | None, str]] = []
        self.stats = EmitterStats()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
            return
        self.stats.failed += 1
        self._failures.append((msg.key(), delivery_failure_reason(err)))
        log.error("lineage event not delivered to %s (key %r): %s", self.topic, msg.key(), err)

    def emit(self, event: LineageEvent) -> None:
        """Queue one event (non-blocking unless the local queue is full, then it waits for room).

        An event produce() refuses (too large, ...) is logged with its id and size and counted as failed;
        `flush()` raises it with the others."""
        self._produce(self._codec.encode(event.to_record()), partition_key(event.run_id), event.event_id)

    def emit_many(self, events: Iterable[LineageEvent]) -> int:
        n = 0
        for event in events:
            self.emit(event)
            n += 1
        return n

    def send_encoded(self, value: bytes, key: bytes | None) -> None:
        """Queue an already-encoded payload as is (replays, tests of bad input)."""
        self._produce(value, key, None)

    def _produce(self, value: bytes, key: bytes | None, event_id: str | None) -> None:
        self.stats.sent += 1
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:
                # Back-pressure: the local queue is full; serve delivery reports to make room.
                self._producer.poll(0.05)
            except KafkaException as exc:  # refused at once, e.g. MSG_SIZE_TOO_LARGE: fail this event only
                size = len(value) + len(key or b"")
                reason = produce_failure_reason(exc, size, self._max_bytes)
                self.stats.failed += 1
                self._failures.append((key, reason))
                log.error("lineage event %s (key %r, %d bytes) not sent to %s: %s",
                          event_id or "-", key, size, self.topic, reason)  # fmt: skip
                return
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raise DeliveryError for any that failed or are still queued."""
        remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if failures or remaining:
            raise DeliveryError(failures, remaining)

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
