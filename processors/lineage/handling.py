"""What the worker does with one message of the events or OpenLineage topic, apart from faust.

`EventHandler` takes a batch of messages and the time, and writes through two ports: an `Output` (the
publisher: edges, run records, dead letters, changelog records) and two `StateTable`s (dedup by event id,
merged run state by run id) whose writes are themselves changelog records on the same output. faust only
feeds it (processors/worker/app.py) and flushes the output before every offset commit.

The guarantee, structurally: every message that is not a proven duplicate re-derives and re-publishes
its run's outputs, and the state records it implies are queued after those outputs. A crash at any step
loses at most queued-but-unflushed records, and the input of every uncommitted offset is handled again;
the re-handled event is either NEW (its dedup record was lost) or REPLAY (same position), both of which
publish again. tests/unit/test_handling_faults.py kills the handler at every step to prove it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Protocol

from processors import metrics
from processors.lineage import dedup, runs, validation
from schemas import openlineage
from schemas.codec import Codec
from schemas.keys import partition_key, partition_of
from schemas.model import DeadLetter
from schemas.topics import MAPPED_HEADER, MAPPED_VALUE, ORIGIN_HEADER

log = logging.getLogger(__name__)

STAGE = "processor"
MAX_LETTER_PAYLOAD = 512 * 1024  # a dead letter carries at most this much of its message (fits any topic's limit)
MAX_LETTER_REASON = 16 * 1024

Headers = list[tuple[str, str | bytes | None]]


class Message(Protocol):
    """The part of a consumed Kafka message the handler reads (faust's `Message` has these)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> float | None: ...  # seconds, as faust gives it
    @property
    def headers(self) -> Any: ...  # (name, value) pairs or a mapping, as faust gives them; None: none


class Output(Protocol):
    """Where outputs go (the worker's Kafka publisher). `publish` queues one message; it raises
    `OutputTooLargeError` for a message over the limit and `OutputUnavailableError` when it cannot take it at all."""

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None: ...


class StateTable(Protocol):
    """A keyed state table whose writes are durable once the output is flushed (a changelog topic)."""

    def get(self, key: str) -> Any: ...
    def set(self, partition: int, key: str, value: Any) -> None: ...
    def delete(self, partition: int, key: str) -> None: ...


@dataclass(frozen=True)
class Topics:
    events: str
    edges: str
    runs: str
    dlq: str
    openlineage: str = ""


# Where the worker stands in its consumer group, asked once per OpenLineage batch: (the events topic's partition
# count, the events-topic partitions this process owns now), or None when it does not know (not yet assigned).
Placement = Callable[[], "tuple[int, AbstractSet[int]] | None"]


@dataclass(frozen=True)
class Codecs:
    event: Codec
    edge: Codec
    run: Codec
    letter: Codec


class OutputTooLargeError(Exception):
    """Raised by an `Output` for a message over its size limit: the fault of the input that implied it."""


class OutputUnavailableError(Exception):
    """Raised by an `Output` that cannot take a message for a reason of its own (broker, queue, client)."""


def poison(exc: BaseException) -> bool:
    """Whether a failure handling one message is that message's fault (dead-letter it and go on) rather than
    the infrastructure's (let it stop the worker, which replays from its last commit): every exception but
    `OutputUnavailableError`; an `OutputTooLargeError` output is the message's fault."""
    return isinstance(exc, Exception) and not isinstance(exc, OutputUnavailableError)


def _ts(msg: Message) -> int | None:
    return int(msg.timestamp * 1000) if msg.timestamp else None


def _pairs(msg: Message) -> Iterable[tuple[str, Any]]:
    headers = msg.headers or ()
    return headers.items() if isinstance(headers, Mapping) else headers


def origin_of(msg: Message) -> dedup.Origin | None:
    """The OpenLineage message an events-topic message was mapped from (header ORIGIN_HEADER, "partition/offset"),
    or None: an event emitted as Avro, or through the HTTP ingest."""
    for name, value in _pairs(msg):
        if name == ORIGIN_HEADER and value:
            text = value.decode() if isinstance(value, bytes) else str(value)
            partition, _, offset = text.partition("/")
            return int(partition), int(offset)
    return None


def mapped_by_api(msg: Message) -> bool:
    """Whether an OpenLineage topic message is the raw copy of an event the HTTP ingest mapped and published
    itself (header `upriver-mapped: 1`, upriver/http/ingest.py): mapping it again would only make a duplicate."""
    return any(name == MAPPED_HEADER and value in (MAPPED_VALUE, MAPPED_VALUE.decode()) for name, value in _pairs(msg))


class EventHandler:
    """`placement` (None: always as below) says which runs an OpenLineage event may be handled for where it was
    read: a run whose events-topic partition (`schemas.keys.partition_of` its run id) this process owns has its
    state here, on that partition of the tables, whichever way its events come; any other run's event is mapped
    and sent to the events topic, on that partition, for the process that owns it."""

    def __init__(
        self,
        topics: Topics,
        codecs: Codecs,
        output: Output,
        seen: StateTable,
        run_states: StateTable,
        placement: Placement | None = None,
    ) -> None:
        self.topics = topics
        self.codecs = codecs
        self.output = output
        self.seen = seen
        self.run_states = run_states
        self.placement = placement
        self.positions = dedup.Positions()
        self.ol_positions = dedup.Positions()

    # ---- the events topic ------------------------------------------------------------------------

    def handled(self, topic: str, partition: int, offset: int) -> bool | None:
        """Whether this process handled the message (None: not a topic this handler tracks)."""
        if topic == self.topics.events:
            return self.positions.handled(partition, offset)
        if topic == self.topics.openlineage:
            return self.ol_positions.handled(partition, offset)
        return None

    def handle_batch(self, messages: Iterable[Message], now: int) -> None:
        """Each message once per process (faust may hand over again what this process handled: its output
        is queued already); one poison message is dead-lettered and the rest of the batch goes on."""
        for msg in messages:
            if self.positions.handled(msg.partition, msg.offset):
                metrics.REDELIVERED.inc()
                continue
            try:
                self.handle(msg, now)
            except Exception as exc:
                if not poison(exc):
                    raise
                log.exception("processing %s/%d/%d failed", msg.topic, msg.partition, msg.offset)
                self.reject(msg, validation.Rejection(validation.PROCESSING, f"{type(exc).__name__}: {exc}"), now)
            self.positions.mark(msg.partition, msg.offset)
            metrics.EVENTS_IN.inc()

    def handle(self, msg: Message, now: int) -> None:
        result = validation.accept(self.codecs.event, msg.value, now)
        if isinstance(result, validation.Rejection):
            self.reject(msg, result, now)
            return
        self.merge(result, msg.key, _ts(msg), msg.partition, msg.offset, origin_of(msg), now)

    def merge(
        self,
        result: validation.Record,
        key: bytes | None,
        ts: int | None,
        partition: int,
        offset: int,
        origin: dedup.Origin | None,
        now: int,
    ) -> None:
        """A valid event into its run's state (on table partition `partition`) and the run's outputs."""
        event_id = result["event_id"]
        verdict = dedup.decide(self.seen.get(event_id), partition, offset, origin)
        if verdict is dedup.Verdict.DUPLICATE:
            metrics.DUPLICATES.inc()
            return
        if verdict is dedup.Verdict.REPLAY:
            metrics.REPLAYS.inc()
        run_id = result["run_id"]
        prior = self.run_states.get(run_id)
        state, changed = runs.merge(None if prior is None else runs.RunState.from_json(prior), result)
        # Every event that is not a proven duplicate re-derives the run's outputs: its whole current state
        # and all its edges, at the state's revision (readers keep the highest revision, so whatever order
        # the run's events came in, the last word is complete). Also when the merge reports no change: a
        # worker killed after the run-state record reached Kafka but before the outputs did sees the event
        # again as NEW with an unchanged state, and must publish (a re-sent revision is harmless: readers
        # keep one row per revision). Outputs keep the input's Kafka timestamp (end-to-end latency).
        # Everything is derived and encoded before anything is published: an event that fails here is
        # dead-lettered with nothing of it out.
        run_value = self.codecs.run.encode(runs.run_record(state, now))
        derived = runs.edges(state, now)
        edge_values = [self.codecs.edge.encode(edge) for edge in derived]
        self.output.publish(self.topics.runs, key, run_value, timestamp=ts)
        for value in edge_values:
            self.output.publish(self.topics.edges, key, value, timestamp=ts)
        metrics.EDGES_OUT.inc(len(derived))
        metrics.MESSAGES_OUT.labels("runs").inc()
        metrics.MESSAGES_OUT.labels("edges").inc(len(derived))
        # State after the outputs it implies (the output is flushed before every offset commit).
        if changed:
            if prior is not None and prior.get("p", partition) != partition:
                # held on another partition (a producer whose partitioner is not librdkafka's, with this run's
                # events handled in place too): one copy only, or a restart could recover the older one
                self.run_states.delete(prior["p"], run_id)
            self.run_states.set(partition, run_id, {**state.to_json(), "u": now, "p": partition})
        self.seen.set(partition, event_id, dedup.seen(partition, offset, now, origin))

    # ---- the OpenLineage topic -------------------------------------------------------------------

    def translate_openlineage(self, messages: Iterable[Message], now: int) -> None:
        """OpenLineage JSON -> LineageEvents, each handled here like an events-topic event when this process owns
        its run's partition (`placement`), else sent as Avro to the events topic on that partition (where `handle`
        takes it, with the OpenLineage message's position in a header: `dedup.Origin`); refused ones go to the
        dead-letter topic with the reason. The event id is derived from the event's content, so the producer
        sending it twice is a duplicate. The HTTP ingest's raw copies (already mapped by the API) are
        acknowledged with no output and counted as `mapped_by_api`. Each message once per process, as in
        `handle_batch`."""
        where = self.placement() if self.placement is not None else None
        for msg in messages:
            if self.ol_positions.handled(msg.partition, msg.offset):
                metrics.REDELIVERED.inc()
                continue
            self._translate(msg, where, now)
            self.ol_positions.mark(msg.partition, msg.offset)

    def _translate(self, msg: Message, where: tuple[int, AbstractSet[int]] | None, now: int) -> None:
        if mapped_by_api(msg):
            metrics.OPENLINEAGE_IN.labels("mapped_by_api").inc()
            return
        try:
            record = openlineage.to_record(openlineage.decode(msg.value or b""))
            found = validation.problems(record, now)
            if found:
                raise openlineage.OpenLineageError("; ".join(found))
            key = partition_key(record["run_id"])
            origin = (msg.partition, msg.offset)
            partition = None if where is None else partition_of(key, where[0])  # None: librdkafka's, the same rule
            if partition is not None and where is not None and partition in where[1]:
                self.merge(record, key, _ts(msg), partition, msg.offset, origin, now)
                metrics.OPENLINEAGE_ROUTED.labels("in_place").inc()
            else:
                value = self.codecs.event.encode(record)
                headers: Headers = [(ORIGIN_HEADER, f"{origin[0]}/{origin[1]}".encode())]
                self.output.publish(self.topics.events, key, value, headers, partition=partition, timestamp=_ts(msg))
                metrics.OPENLINEAGE_ROUTED.labels("events_topic").inc()
        except openlineage.OpenLineageError as exc:
            kind = validation.UNDECODABLE if str(exc).startswith("not JSON") else validation.INVALID
            self.reject(msg, validation.Rejection(kind, f"OpenLineage: {exc}"), now)
            metrics.OPENLINEAGE_IN.labels("rejected").inc()
            return
        except Exception as exc:  # one poison message never stops the agent or its batch
            if not poison(exc):
                raise
            log.exception("OpenLineage message %s/%d/%d failed", msg.topic, msg.partition, msg.offset)
            reason = f"OpenLineage: {type(exc).__name__}: {exc}"
            self.reject(msg, validation.Rejection(validation.PROCESSING, reason), now)
            metrics.OPENLINEAGE_IN.labels("rejected").inc()
            return
        metrics.OPENLINEAGE_IN.labels("accepted").inc()

    # ---- dead letters ----------------------------------------------------------------------------

    def reject(self, msg: Message, rejection: validation.Rejection, now: int) -> None:
        payload = msg.value or b""
        reason = rejection.reason
        if len(payload) > MAX_LETTER_PAYLOAD:  # the dead letter itself must fit the producer's message limit
            reason += f" (payload truncated from {len(payload):,} bytes to {MAX_LETTER_PAYLOAD:,})"
            payload = payload[:MAX_LETTER_PAYLOAD]
        reason = reason[:MAX_LETTER_REASON]
        letter = DeadLetter(
            error_kind=rejection.error_kind,
            reason=reason,
            stage=STAGE,
            source_topic=msg.topic,
            source_partition=msg.partition,
            source_offset=msg.offset,
            key=msg.key,
            payload=payload,
            failed_at=now,
        )
        headers: Headers = [
            ("upriver.error_kind", rejection.error_kind.encode()),
            ("upriver.reason", reason.encode()[:4096]),
            ("upriver.source", f"{msg.topic}/{msg.partition}/{msg.offset}".encode()),
        ]
        self.output.publish(self.topics.dlq, msg.key, self.codecs.letter.encode(letter.to_record()), headers)
        metrics.DEAD_LETTERS.labels(rejection.error_kind).inc()
        log.warning(
            "dead-lettered %s/%d/%d: %s: %s",
            msg.topic,
            msg.partition,
            msg.offset,
            rejection.error_kind,
            rejection.reason,
        )
