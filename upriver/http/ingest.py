"""OpenLineage HTTP ingest: `POST /api/v1/lineage` (one event) and `POST /api/v1/lineage/batch`.

Each accepted event is mapped (schemas/openlineage.py), checked with the processor's own rules
(processors/lineage/validation.py), encoded as an Avro LineageEvent and published to the events topic, and
its raw JSON (a single POST's body exactly, a batch element's text in the body) to the OpenLineage topic with
the header `upriver-mapped: 1`, so the sink keeps it as received while the worker, which maps that topic's
other messages, skips it. The answer is sent only after Kafka acknowledged both (idempotent producer,
acks=all), so a 2xx is durable. Invalid events are answered with their reason and never published.
docs/openlineage.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from processors.lineage.validation import problems
from schemas.codec import Codec, CodecError
from schemas.keys import partition_key
from schemas.openlineage import (
    MAX_EVENT_BYTES,
    MAX_MESSAGE_BYTES,
    TOO_DEEP,
    OpenLineageError,
    decode,
    to_record,
    too_deep,
)
from schemas.topics import MAPPED_HEADER, MAPPED_VALUE
from upriver import metrics
from upriver.deploy.kafka import effective_limit, read_message_limit, record_bytes, too_large
from upriver.http.bodies import MAX_BODY_BYTES as MAX_BODY_BYTES
from upriver.http.bodies import IngestError as IngestError
from upriver.http.bodies import batch_events as batch_events
from upriver.http.bodies import body_bytes as body_bytes

log = logging.getLogger(__name__)

LIMIT_REFRESH_S = 1.0  # a topic's max.message.bytes is read again at most this often (on a refusal)
# An event's raw copy on the OpenLineage topic carries `upriver-mapped: 1` (schemas/topics.py): the worker skips it.
MAPPED_HEADER_BYTES = len(MAPPED_HEADER) + len(MAPPED_VALUE) + 8  # its bytes in the record, with varints

Headers = list[tuple[str, str | bytes | None]]
Outgoing = tuple[str, bytes, bytes, Headers | None, int]  # topic, key, value, headers, the event's index


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


def raw_record_bytes(key: bytes, raw: bytes) -> int:
    """An event's raw copy's size as Kafka counts it against the raw topic's limit, its header included."""
    return record_bytes(key, raw) + MAPPED_HEADER_BYTES


class OpenLineageIngest:
    """Maps, validates and publishes OpenLineage events; thread-safe (the HTTP server is threaded).

    An event whose Avro record does not fit the events topic's max.message.bytes, or whose raw copy does not
    fit `raw_topic`'s (each read from Kafka on first use, and again when an event would not fit or Kafka
    refuses one as too large), is answered 413 naming that limit: a topic created elsewhere may take less
    than the stack's MAX_MESSAGE_BYTES. Without `raw_topic` no raw copy is published."""

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        topic: str,
        codec: Codec,
        timeout_s: float = 30.0,
        raw_topic: str | None = None,
    ) -> None:
        config = {"message.max.bytes": MAX_MESSAGE_BYTES, **kafka_config}
        self._producer = Producer({**config, "enable.idempotence": True, "acks": "all", "linger.ms": 2, "log_level": 3})
        self._kafka_config = dict(kafka_config)
        self._producer_limit = int(config["message.max.bytes"])
        self._topic = topic
        self._raw_topic = raw_topic
        self._codec = codec
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._limit_lock = threading.Lock()
        self._topic_limit: dict[str, int | None] = {}
        self._limit_read_at: dict[str, float] = {}
        # One thread serves the producer's delivery reports; a request waits on its own Event instead of
        # polling the shared producer itself (16 request threads polling contend for the GIL).
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="upriver-ingest-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

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

    def message_limit(self, refresh: bool = False, topic: str | None = None) -> int:
        """The largest message `topic` (default: the events topic) takes from this producer: its
        max.message.bytes, read on first use (and with `refresh`, again if the last read is LIMIT_REFRESH_S
        old), capped by the producer's."""
        topic = topic or self._topic
        with self._limit_lock:
            last = self._limit_read_at.get(topic)
            if last is None or (refresh and time.monotonic() - last >= LIMIT_REFRESH_S):
                self._read_limit(topic)
            return effective_limit(self._topic_limit.get(topic), self._producer_limit)

    def _read_limit(self, topic: str) -> None:
        read = read_message_limit(self._kafka_config, topic)
        self._limit_read_at[topic] = time.monotonic()
        if read is not None:
            self._topic_limit[topic] = read

    def oversized(self, message: tuple[bytes, bytes], raw: bytes | None = None) -> str | None:
        """Why `message` cannot go to the events topic, or the event's `raw` copy to the raw topic (over the
        topic's message limit), or None when they fit."""
        sized = [(self._topic, record_bytes(*message))]
        if raw is not None and self._raw_topic:
            sized.append((self._raw_topic, raw_record_bytes(message[0], raw)))
        for topic, size in sized:
            if size > self.message_limit(topic=topic):
                limit = self.message_limit(refresh=True, topic=topic)  # raised since it was read?
                if size > limit:
                    return too_large(size, limit, topic)
        return None

    def publish(self, messages: list[tuple[bytes, bytes]], raws: list[bytes] | None = None) -> set[int]:
        """Publish `messages` to the events topic (and with `raws`, each event's raw copy to the raw topic with
        the header MAPPED_HEADER, under the same key) and wait until Kafka acknowledged every one; returns the
        indices of the events Kafka refused a copy of as too large (MSG_SIZE_TOO_LARGE). IngestError 503 for
        any other failure."""
        return self._produce(self.outgoing(messages, raws))

    def outgoing(self, messages: list[tuple[bytes, bytes]], raws: list[bytes] | None = None) -> list[Outgoing]:
        """(topic, key, value, headers, event index) of every message `publish` sends: each event to the events
        topic and, with `raws` and a raw topic, its raw copy under the same key with MAPPED_HEADER."""
        out: list[Outgoing] = [(self._topic, key, value, None, i) for i, (key, value) in enumerate(messages)]
        if raws is not None and self._raw_topic:
            headers: Headers = [(MAPPED_HEADER, MAPPED_VALUE)]
            out += [(self._raw_topic, messages[i][0], raw, headers, i) for i, raw in enumerate(raws)]
        return out

    @property
    def producer(self) -> Producer:
        """The idempotent acks=all producer, its delivery reports served by this ingest's polling thread (an
        on_delivery given to `produce` runs on that thread)."""
        return self._producer

    def _produce(self, out: list[Outgoing]) -> set[int]:
        if not out:
            return set()
        done = threading.Event()
        pending = [len(out)]
        counting = threading.Lock()  # reports arrive on the poller thread, refusals on this one
        errors: list[str] = []
        oversized: set[int] = set()

        def settle() -> None:
            with counting:
                pending[0] -= 1
                if pending[0] == 0:
                    done.set()

        def delivered(index: int) -> Callable[[KafkaError | None, Message], None]:
            def on_delivery(err: KafkaError | None, _msg: Message) -> None:
                if err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    oversized.add(index)
                elif err is not None:
                    errors.append(str(err))
                settle()

            return on_delivery

        with self._lock:
            for topic, key, value, headers, index in out:
                while True:
                    try:
                        self._producer.produce(topic, value=value, key=key, headers=headers,
                                               on_delivery=delivered(index))  # fmt: skip
                        break
                    except BufferError:
                        self._producer.poll(0.05)
                    except KafkaException as exc:  # refused before sending: librdkafka's own message.max.bytes
                        error = exc.args[0] if exc.args else None
                        if not (isinstance(error, KafkaError) and error.code() == KafkaError.MSG_SIZE_TOO_LARGE):
                            raise IngestError(503, f"Kafka refused the event: {exc}") from None
                        oversized.add(index)
                        settle()
                        break
        if not done.wait(self._timeout):
            raise IngestError(503, f"Kafka did not acknowledge {pending[0]} event(s) within {self._timeout:.0f}s")
        if errors:
            raise IngestError(503, f"Kafka refused {len(errors)} event(s): {errors[0]}")
        return oversized

    def _limits_after_refusal(self) -> dict[str, int]:
        """Each topic's limit read again: Kafka refused a message the limits read before said fit."""
        topics = [self._topic, *([self._raw_topic] if self._raw_topic else [])]
        with self._limit_lock:
            for topic in topics:
                self._read_limit(topic)
            return {t: effective_limit(self._topic_limit.get(t), self._producer_limit) for t in topics}

    def _refusal(self, message: tuple[bytes, bytes], raw: bytes | None, limits: Mapping[str, int]) -> str:
        """The reason for an event Kafka refused a copy of: its raw copy's when only that is over its topic's
        limit, else its Avro record's."""
        size = record_bytes(*message)
        if raw is not None and self._raw_topic:
            raw_size = raw_record_bytes(message[0], raw)
            if size <= limits[self._topic] and raw_size > limits[self._raw_topic]:
                return too_large(raw_size, limits[self._raw_topic], self._raw_topic)
        return too_large(size, limits[self._topic], self._topic)

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
        raw = body if self._raw_topic else None  # the event as received: the body exactly
        reason = self.oversized(message, raw)
        if reason is None and self.publish([message], None if raw is None else [raw]):
            reason = self._refusal(message, raw, self._limits_after_refusal())
        if reason is not None:
            metrics.INGESTED.labels("http", "rejected").inc()
            raise IngestError(413, reason)
        metrics.INGESTED.labels("http", "accepted").inc()

    def batch(self, body: bytes) -> BatchResult:
        """`POST /api/v1/lineage/batch`: a JSON array of events (or {"events": [...]}); per-event results."""
        events = batch_events(body)
        result = BatchResult(received=len(events))
        messages: list[tuple[bytes, bytes]] = []
        raws: list[bytes] | None = [] if self._raw_topic else None  # each message's raw copy: its JSON as sent
        indices: list[int] = []  # the event index of each message
        for i, (event, sent) in enumerate(events):
            try:
                raw = sent if raws is not None else None
                if len(sent) > MAX_EVENT_BYTES:
                    raise OpenLineageError(f"event is {len(sent):,} bytes; the limit is {MAX_EVENT_BYTES:,}")
                if too_deep(sent, event):  # deep JSON must not reach the mapping
                    raise OpenLineageError(TOO_DEEP)
                message = self.prepare(event)
                reason = self.oversized(message, raw)
                if reason is not None:
                    raise OpenLineageError(reason)
                messages.append(message)
                if raws is not None and raw is not None:
                    raws.append(raw)
                indices.append(i)
            except OpenLineageError as exc:
                result.failures.append({"index": i, "reason": str(exc)})
        refused = self.publish(messages, raws)
        if refused:
            limits = self._limits_after_refusal()
            for m in refused:
                why = self._refusal(messages[m], None if raws is None else raws[m], limits)
                result.failures.append({"index": indices[m], "reason": why})
            result.failures.sort(key=lambda f: int(f["index"]))
        result.successful = len(messages) - len(refused)
        metrics.INGESTED.labels("http", "accepted").inc(result.successful)
        metrics.INGESTED.labels("http", "rejected").inc(len(result.failures))
        return result

    def close(self) -> None:
        self._closed.set()
        self._poller.join(1.0)
        self._producer.flush(10)

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce one message to `topic` with this ingest's idempotent producer and wait until Kafka
        acknowledged it (the tag writes, upriver/http/tags.py); IngestError 503 when it did not."""
        failed: list[str] = []
        done = threading.Event()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failed.append(str(err))
            done.set()

        with self._lock:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            except (BufferError, KafkaException) as exc:
                raise IngestError(503, f"Kafka refused the message: {exc}") from None
        if not done.wait(self._timeout):
            raise IngestError(503, f"Kafka did not acknowledge the message within {self._timeout:.0f}s")
        if failed:
            raise IngestError(503, f"Kafka refused the message: {failed[0]}")
