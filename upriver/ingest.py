"""OpenLineage HTTP ingest: `POST /api/v1/lineage` (one event) and `POST /api/v1/lineage/batch`.

Each accepted event is mapped (schemas/openlineage.py), checked with the processor's own rules
(processors/validation.py), encoded as an Avro LineageEvent and published to the events topic; the
answer is sent only after Kafka acknowledged it (idempotent producer, acks=all), so a 2xx is durable.
Invalid events are answered with their reason and never published. docs/openlineage.md.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from processors.validation import problems
from schemas.codec import Codec, CodecError
from schemas.keys import partition_key
from schemas.openlineage import MAX_EVENT_BYTES, OpenLineageError, decode, to_record
from upriver import metrics

log = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 10_000
MAX_BODY_BYTES = 64 * 1024 * 1024  # a batch; each event is still held to MAX_EVENT_BYTES


class IngestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class BatchResult:
    received: int = 0
    successful: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "successful": self.successful,
            "failed": len(self.failures),
            "failures": self.failures,
        }


def body_bytes(raw: bytes, content_encoding: str | None, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, gunzipped if it says so, never more than `limit` bytes (else 413)."""
    if (content_encoding or "").lower() in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise IngestError(400, f"body is not valid gzip: {exc}") from None
        if len(out) > limit:
            raise IngestError(413, f"body is over {limit:,} bytes once decompressed")
        return out
    if content_encoding and content_encoding.lower() != "identity":
        raise IngestError(415, f"Content-Encoding {content_encoding!r} is not supported (use gzip or none)")
    return raw


class OpenLineageIngest:
    """Maps, validates and publishes OpenLineage events; thread-safe (the HTTP server is threaded)."""

    def __init__(self, kafka_config: Mapping[str, Any], topic: str, codec: Codec, timeout_s: float = 30.0) -> None:
        self._producer = Producer(
            {**kafka_config, "enable.idempotence": True, "acks": "all", "linger.ms": 2, "log_level": 3}
        )
        self._topic = topic
        self._codec = codec
        self._timeout = timeout_s
        self._lock = threading.Lock()

    def prepare(self, doc: Any) -> tuple[bytes, bytes]:
        """(key, Avro value) for one parsed event; OpenLineageError says why it is refused."""
        record = to_record(doc)
        found = problems(record, int(time.time() * 1000))
        if found:
            raise OpenLineageError("; ".join(found))
        try:
            return partition_key(record["run_id"]), self._codec.encode(record)
        except CodecError as exc:  # pragma: no cover - to_record builds schema-shaped records
            raise OpenLineageError(f"cannot encode: {exc}") from exc

    def publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        """Publish and wait until Kafka acknowledged every message (IngestError 503 otherwise)."""
        if not messages:
            return
        done = threading.Event()
        pending = [len(messages)]
        errors: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(str(err))
            pending[0] -= 1
            if pending[0] == 0:
                done.set()

        with self._lock:
            for key, value in messages:
                while True:
                    try:
                        self._producer.produce(self._topic, value=value, key=key, on_delivery=on_delivery)
                        break
                    except BufferError:
                        self._producer.poll(0.05)
        deadline = time.monotonic() + self._timeout
        while not done.is_set():
            if time.monotonic() > deadline:
                raise IngestError(503, f"Kafka did not acknowledge {pending[0]} event(s) within {self._timeout:.0f}s")
            self._producer.poll(0.01)
        if errors:
            raise IngestError(503, f"Kafka refused {len(errors)} event(s): {errors[0]}")

    def one(self, body: bytes) -> None:
        """`POST /api/v1/lineage`: 201 when it returns; IngestError 400/413/503 otherwise."""
        if len(body) > MAX_EVENT_BYTES:
            metrics.INGESTED.labels("http", "rejected").inc()
            raise IngestError(413, f"event is {len(body):,} bytes; the limit is {MAX_EVENT_BYTES:,}")
        try:
            message = self.prepare(decode(body))
        except OpenLineageError as exc:
            metrics.INGESTED.labels("http", "rejected").inc()
            raise IngestError(400, str(exc)) from None
        self.publish([message])
        metrics.INGESTED.labels("http", "accepted").inc()

    def batch(self, body: bytes) -> BatchResult:
        """`POST /api/v1/lineage/batch`: a JSON array of events (or {"events": [...]}); per-event results."""
        try:
            doc = decode(body, MAX_BODY_BYTES)  # the depth limit too: deep JSON must not reach json.dumps
        except OpenLineageError as exc:
            raise IngestError(400, str(exc)) from None
        events = doc.get("events") if isinstance(doc, dict) else doc
        if not isinstance(events, list):
            raise IngestError(400, "a batch is a JSON array of OpenLineage events (or an object with 'events')")
        if len(events) > MAX_BATCH_EVENTS:
            raise IngestError(413, f"{len(events):,} events in one batch; the limit is {MAX_BATCH_EVENTS:,}")
        result = BatchResult(received=len(events))
        messages = []
        for i, event in enumerate(events):
            try:
                size = len(json.dumps(event))
                if size > MAX_EVENT_BYTES:
                    raise OpenLineageError(f"event is {size:,} bytes; the limit is {MAX_EVENT_BYTES:,}")
                messages.append(self.prepare(event))
            except OpenLineageError as exc:
                result.failures.append({"index": i, "reason": str(exc)})
        self.publish(messages)
        result.successful = len(messages)
        metrics.INGESTED.labels("http", "accepted").inc(len(messages))
        metrics.INGESTED.labels("http", "rejected").inc(len(result.failures))
        return result

    def close(self) -> None:
        self._producer.flush(10)
