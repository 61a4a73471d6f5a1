"""Where the SDK's events go: to Kafka without ever blocking or raising, or into memory for tests.

A transport never stops the user's pipeline: `send` queues or drops (counted, warned about), and
`flush(timeout)` reports what was not delivered instead of raising.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from producers import metrics
from producers.emitter import PRODUCER_DEFAULTS
from schemas.codec import make_codec
from schemas.keys import partition_key
from schemas.model import LineageEvent, node_id

log = logging.getLogger(__name__)

WARN_EVERY_S = 10.0


@dataclass(frozen=True)
class FlushReport:
    """What happened to the events sent so far: `ok` when nothing was lost or is still waiting."""

    sent: int
    delivered: int
    failed: int
    dropped: int
    pending: int

    @property
    def ok(self) -> bool:
        return self.failed == self.dropped == self.pending == 0

    def __str__(self) -> str:
        state = "all delivered" if self.ok else "NOT all delivered"
        return (
            f"{state}: {self.sent} sent, {self.delivered} delivered, {self.failed} failed, "
            f"{self.dropped} dropped (local buffer full), {self.pending} still queued"
        )


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
        topic: str = "upriver.events.v1",
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
        self._producer = Producer(conf)  # config may hold secrets: never logged
        self._lock = threading.Lock()
        self._sent = self._delivered = self._failed = self._dropped = 0
        self._last_warning = 0.0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            if err is None:
                self._delivered += 1
                metrics.DELIVERED.inc()
                return
            self._failed += 1
        metrics.DROPPED.labels("delivery_failed").inc()
        self._warn(f"lineage event not delivered to {self.topic}: {err}")

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("%s (so far: %d dropped, %d failed; lineage is incomplete)", message, self._dropped,
                        self._failed)  # fmt: skip

    def send(self, event: LineageEvent) -> None:
        try:
            value = self._codec.encode(event.to_record())
        except Exception as exc:  # a bug in the caller's data must not crash their pipeline
            self._dropped += 1
            metrics.DROPPED.labels("encode_error").inc()
            self._warn(f"lineage event {event.event_id} cannot be encoded: {exc}")
            return
        try:
            key = partition_key(event.run_id)
            self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
        except BufferError:
            self._dropped += 1
            metrics.DROPPED.labels("buffer_full").inc()
            self._warn("lineage buffer full (is Kafka reachable?): dropping events")
            return
        self._sent += 1
        metrics.SENT.inc()
        self._producer.poll(0)

    def flush(self, timeout: float = 10.0) -> FlushReport:
        pending = self._producer.flush(timeout)
        with self._lock:
            return FlushReport(self._sent, self._delivered, self._failed, self._dropped, pending)

    def close(self, timeout: float = 10.0) -> FlushReport:
        report = self.flush(timeout)
        if not report.ok:
            log.warning("closing the lineage transport: %s", report)
        return report
