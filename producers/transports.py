"""Where the SDK's events go: to Kafka without ever blocking or raising, or into memory for tests.

A transport never stops the user's pipeline: `send` queues, or counts the event as dropped or failed
with its reason (a full local buffer, an event librdkafka refuses such as one over message.max.bytes),
and `flush(timeout)` reports what was not delivered and why instead of raising.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from producers import metrics
from producers.kafka import (
    PRODUCER_DEFAULTS,
    KafkaError,
    Message,
    Producer,
    delivery_failure_reason,
    is_too_large,
    produce_failure_reason,
)
from schemas import topics
from schemas.codec import make_codec
from schemas.keys import partition_key
from schemas.model import LineageEvent, node_id

log = logging.getLogger(__name__)

WARN_EVERY_S = 10.0
MAX_LOST = 100  # undelivered events a FlushReport names one by one (all are counted in `reasons`)


@dataclass(frozen=True)
class Lost:
    """One event that was not delivered: its id, its encoded size in bytes (None if never encoded), why."""

    event_id: str
    size: int | None
    reason: str


@dataclass(frozen=True)
class FlushReport:
    """What happened to the events sent so far: `ok` when nothing was lost or is still waiting.

    `sent` counts every event handed to the emitter, so sent == delivered + failed + dropped + pending.
    `failed`: Kafka or librdkafka refused it (at produce, e.g. over message.max.bytes, or at delivery);
    `dropped`: never reached the producer (local buffer full, not encodable). `reasons` counts both by
    reason; `lost` names the first MAX_LOST of them.
    """

    sent: int
    delivered: int
    failed: int
    dropped: int
    pending: int
    reasons: tuple[tuple[str, int], ...] = ()
    lost: tuple[Lost, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failed == self.dropped == self.pending == 0

    def __str__(self) -> str:
        counts = (
            f"{self.sent} sent, {self.delivered} delivered, {self.failed} failed, "
            f"{self.dropped} dropped, {self.pending} still queued"
        )
        if self.ok:
            return f"all delivered: {counts}"
        missing = self.sent - self.delivered
        why = "; ".join(f"{n} x {reason}" for reason, n in self.reasons)
        return f"INCOMPLETE, {missing} of {self.sent} not delivered: {counts}" + (f" (why: {why})" if why else "")


class Transport(Protocol):
    def send(self, event: LineageEvent) -> None: ...
    def flush(self, timeout: float) -> FlushReport: ...
    def close(self, timeout: float) -> FlushReport: ...


class InMemoryTransport:
    """Keeps every event in `events`; for asserting lineage in unit tests without Kafka."""

    def __init__(self) -> None:
        self.events: list[LineageEvent] = []

    def send(self, event: LineageEvent) -> None:
        self.events.append(event)

    def flush(self, timeout: float = 0.0) -> FlushReport:
        n = len(self.events)
        return FlushReport(sent=n, delivered=n, failed=0, dropped=0, pending=0)

    def close(self, timeout: float = 0.0) -> FlushReport:
        return self.flush(timeout)

    def clear(self) -> None:
        self.events.clear()

    def runs(self) -> dict[str, list[LineageEvent]]:
        """run_id -> its events, in the order sent."""
        out: dict[str, list[LineageEvent]] = {}
        for e in self.events:
            out.setdefault(e.run_id, []).append(e)
        return out

    def edges(self) -> set[tuple[str, str]]:
        """(input node id, output node id) over every run that did not fail or abort, a run's events merged."""
        out: set[tuple[str, str]] = set()
        for events in self.runs().values():
            if any(e.event_type.value in ("FAIL", "ABORT") for e in events):
                continue
            ins = {node_id(a.kind, a.namespace, a.name) for e in events for a in e.inputs}
            outs = {node_id(a.kind, a.namespace, a.name) for e in events for a in e.outputs}
            out |= {(i, o) for i in ins for o in outs if i != o}
        return out


class KafkaTransport:
    """An idempotent confluent-kafka producer with a bounded local queue that drops rather than waits."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = topics.EVENTS,
        *,
        buffer_events: int = 100_000,
        message_timeout_ms: int = 30_000,
        registry_url: str = "",
        **producer_overrides: Any,
    ) -> None:
        self.topic = topic
        self._codec = make_codec("lineage_event", registry_url, topic)
        conf: dict[str, Any] = {
            **PRODUCER_DEFAULTS,
            "bootstrap.servers": bootstrap_servers,
            "queue.buffering.max.messages": buffer_events,
            "message.timeout.ms": message_timeout_ms,
            "log_level": 3,
            **producer_overrides,
        }
        conf["enable.idempotence"] = True
        self._max_bytes = int(conf.get("message.max.bytes", 1_000_000))
        self._producer = Producer(conf)  # config may hold secrets: never logged
        self._lock = threading.Lock()
        self._sent = self._delivered = self._failed = self._dropped = 0
        self._reasons: Counter[str] = Counter()
        self._lost: list[Lost] = []
        self._last_warning = 0.0

    def _count_lost(self, event_id: str, size: int | None, reason: str, *, dropped: bool) -> None:
        with self._lock:
            if dropped:
                self._dropped += 1
            else:
                self._failed += 1
            self._reasons[reason] += 1
            if len(self._lost) < MAX_LOST:
                self._lost.append(Lost(event_id, size, reason))

    def _on_delivery(self, event_id: str, size: int, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            with self._lock:
                self._delivered += 1
            metrics.DELIVERED.inc()
            return
        self._count_lost(event_id, size, delivery_failure_reason(err), dropped=False)
        metrics.DROPPED.labels("delivery_failed").inc()
        self._warn(f"lineage event not delivered to {self.topic}: {err}")

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("%s (so far: %d dropped, %d failed; lineage is incomplete)", message, self._dropped,
                        self._failed)  # fmt: skip

    def send(self, event: LineageEvent) -> None:
        """Queue `event`; never raises: what cannot be queued is counted, with its reason, in the report."""
        with self._lock:
            self._sent += 1
        try:
            value = self._codec.encode(event.to_record())
        except Exception as exc:  # a bug in the caller's data must not crash their pipeline
            self._count_lost(event.event_id, None, f"cannot be encoded: {exc}", dropped=True)
            metrics.DROPPED.labels("encode_error").inc()
            self._warn(f"lineage event {event.event_id} cannot be encoded: {exc}")
            return
        key = partition_key(event.run_id)
        size = len(value) + len(key)
        try:
            self._producer.produce(
                self.topic, value=value, key=key, on_delivery=functools.partial(self._on_delivery, event.event_id, size)
            )
        except BufferError:
            self._count_lost(event.event_id, size, "local buffer full (is Kafka reachable?)", dropped=True)
            metrics.DROPPED.labels("buffer_full").inc()
            self._warn("lineage buffer full (is Kafka reachable?): dropping events")
            return
        except Exception as exc:  # KafkaException (e.g. MSG_SIZE_TOO_LARGE) or anything else produce() raises
            reason = produce_failure_reason(exc, size, self._max_bytes)
            self._count_lost(event.event_id, size, reason, dropped=False)
            metrics.DROPPED.labels("too_large" if is_too_large(exc) else "produce_failed").inc()
            # Once per event, not rate-limited: the id and size say which event to fix.
            log.warning("lineage event %s (%d bytes) not sent to %s: %s", event.event_id, size, self.topic, reason)
            return
        metrics.SENT.inc()
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> FlushReport:
        self._producer.flush(timeout)
        with self._lock:
            # Every sent event is delivered, failed, dropped or still in librdkafka's queue.
            pending = self._sent - self._delivered - self._failed - self._dropped
            return FlushReport(
                self._sent, self._delivered, self._failed, self._dropped, pending,
                reasons=tuple(self._reasons.most_common()), lost=tuple(self._lost),
            )  # fmt: skip

    def close(self, timeout: float = 10.0) -> FlushReport:
        report = self.flush(timeout)
        if not report.ok:
            log.warning("closing the lineage transport: %s", report)
        return report
