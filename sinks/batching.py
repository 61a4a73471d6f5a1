"""The sink's batching, apart from Kafka and ClickHouse: the consumer port and the per-table row batches.

`Batcher` turns consumed messages into per-partition row buffers, skips offsets ClickHouse already holds,
says when the batch is due (rows or age, UPRIVER_SINK_BATCH_ROWS / UPRIVER_SINK_BATCH_MS), hands out
one batch per table with its dedup token, and the offsets to commit once every insert of it returned.
It drops what a revoked partition buffered (uncommitted, so its next owner reads it again).

`ConsumerPort` is what the loop in `sinks.loader` needs of a Kafka consumer; `sinks.loader.KafkaConsumer`
is the confluent-kafka adapter, tests use a list-backed one. The writer port is `sinks.writer.RowWriter`.
Nothing here imports confluent-kafka or clickhouse-connect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.codec import CodecError
from sinks.metrics import SinkMetrics
from sinks.rows import Row, RowError, TableLayout

# The sink's log lines keep the logger name they always had, whichever sink module writes them.
log = logging.getLogger("sinks.loader")

# Upper bound of messages taken from the consumer per consume() call.
MAX_FETCH = 10_000
# Longest single wait inside one poll, so the loop notices `stop` promptly.
MAX_POLL_S = 0.5

RowFn = Callable[[bytes, int, int], Row]
TimedRowFn = Callable[[bytes, int, int, int], Row]  # the same, also given the message's Kafka timestamp (ms)
TP = tuple[str, int]
StoredOffsets = Callable[[str], Mapping[int, int]]


class KafkaRecord(Protocol):
    """One consumed message, as the sink reads it (confluent_kafka.Message has these methods)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...


Rebalance = Callable[[list[TP]], None]


class CommitError(Exception):
    """The offset commit as a whole failed (the rows are stored; commit again with the next batch)."""


class ConsumerPort(Protocol):
    """The Kafka consumer the sink's loop drives; partitions are `(topic, partition)` pairs."""

    def subscribe(self, topics: Sequence[str], on_assign: Rebalance, on_revoke: Rebalance) -> None:
        """Join the group; the callbacks run inside `consume` (on_revoke also for lost partitions)."""
        ...

    def consume(self, num_messages: int, timeout: float) -> Sequence[KafkaRecord]:
        """Up to `num_messages` messages within `timeout` seconds, none of paused partitions.

        Broker notices are not messages: a fatal one raises, the others are logged and left out."""
        ...

    def commit(self, offsets: Mapping[TP, int]) -> Mapping[TP, str]:
        """Commit `offsets` (next offset to read) synchronously; returns the partitions that failed, with
        why. Raises CommitError when the commit as a whole failed."""
        ...

    def pause(self, partitions: Sequence[TP]) -> None: ...
    def resume(self, partitions: Sequence[TP]) -> None: ...
    def assignment(self) -> list[TP]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class TableSpec:
    """Where one topic's messages go: the table layout and `row_fn(value, partition, offset) -> row`, or
    `timed_fn(value, partition, offset, timestamp_ms)` instead when set (a table keeping when Kafka got it).

    `row_fn` raises CodecError or RowError for a value that cannot become a row.
    """

    table: TableLayout
    row_fn: RowFn
    timed_fn: TimedRowFn | None = None


def dedup_token(table: str, ranges: Mapping[int, tuple[int, int]]) -> str:
    """The insert_deduplication_token of a batch: table and per-partition offset ranges, e.g.
    `edges:0:10-57,1:3-90`. The same batch retried yields the same token."""
    parts = ",".join(f"{p}:{first}-{last}" for p, (first, last) in sorted(ranges.items()))
    return f"{table}:{parts}"


@dataclass(frozen=True)
class TableBatch:
    """One table's share of the batch: its rows in partition order, their offset ranges and dedup token."""

    table: TableLayout
    rows: list[Row]
    ranges: dict[int, tuple[int, int]]

    @property
    def token(self) -> str:
        return dedup_token(self.table.name, self.ranges)


@dataclass
class _PartitionBuffer:
    rows: list[Row] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)  # Kafka timestamps (ms) of the buffered rows
    first: int = -1  # offset of the first buffered row
    last: int = -1  # offset of the last buffered row
    next_commit: int = -1  # last consumed offset + 1 (skipped messages included)


def check_tables(tables: Mapping[str, TableSpec], batch_rows: int, batch_ms: int) -> None:
    """Raise ValueError for limits out of range, no topic, or a table fed by two topics."""
    if batch_rows < 1 or batch_ms < 0:
        raise ValueError(
            f"batch_rows must be >= 1 and batch_ms >= 0, got {batch_rows} and {batch_ms}: "
            "fix UPRIVER_SINK_BATCH_ROWS / UPRIVER_SINK_BATCH_MS"
        )
    if not tables:
        raise ValueError("SinkLoader needs at least one topic -> TableSpec mapping")
    by_table: dict[str, str] = {}
    for topic, spec in tables.items():
        other = by_table.setdefault(spec.table.name, topic)
        if other != topic:
            # kafka_partition/kafka_offset in a table must come from one topic, or the
            # already-stored check would compare offsets of different topics.
            raise ValueError(
                f"table {spec.table.name} is fed by topics {other} and {topic}: give each topic its own table"
            )


class Batcher:
    """Row buffers of the assigned partitions over `tables` (topic -> TableSpec).

    `stored_offsets(table)` answers, per kafka_partition, the highest offset `table` holds (the loader
    passes the writer's `max_offsets` behind its retry); it is asked once per table for every newly
    assigned partition of its topic. `generation` grows whenever a revocation dropped buffered rows, so
    a batch handed out before is out of date.
    """

    def __init__(
        self,
        tables: Mapping[str, TableSpec],
        batch_rows: int,
        batch_ms: int,
        stored_offsets: StoredOffsets,
        metrics: SinkMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_tables(tables, batch_rows, batch_ms)
        self.tables = dict(tables)
        self.batch_rows = batch_rows
        self._batch_s = batch_ms / 1000.0
        self._stored_offsets = stored_offsets
        self._metrics = metrics
        self._clock = clock
        self._buffers: dict[TP, _PartitionBuffer] = {}
        self.buffered_rows = 0
        self._batch_started: float | None = None
        self._consume_started: float | None = None  # when the latest consume began (`consuming`)
        self._stored: dict[TP, int] = {}  # highest offset already in ClickHouse, per assigned partition
        self._needs_stored: set[TP] = set()
        self._revocations: dict[TP, int] = {}  # per partition, how often it was revoked
        self.generation = 0

    # ---- when to consume, when to flush --------------------------------------------------------

    @property
    def empty(self) -> bool:
        """No partition consumed anything since the last commit."""
        return not self._buffers

    def fetch_size(self) -> int:
        """How many messages to take next: the room left in the batch, at least 1, at most MAX_FETCH."""
        return max(1, min(MAX_FETCH, self.batch_rows - self.buffered_rows))

    def poll_timeout(self) -> float:
        """How long the next consume may wait: until the batch is due, at most MAX_POLL_S.

        A consume returns when it holds `fetch_size()` messages or its time is up, so with no batch begun it
        may wait only `batch_ms` too: a message it receives early must not wait MAX_POLL_S and then
        `batch_ms` more. Call `consuming()` just before the consume."""
        if self._batch_started is None:
            return min(MAX_POLL_S, self._batch_s)
        remaining = self._batch_started + self._batch_s - self._clock()
        return max(0.0, min(MAX_POLL_S, remaining))

    def consuming(self) -> None:
        """A consume starts now: a batch begun by the messages it returns is as old as this call (its first
        message may have arrived at any moment of the wait)."""
        self._consume_started = self._clock()

    def full(self) -> bool:
        return self.buffered_rows >= self.batch_rows

    def due(self) -> bool:
        """The batch holds `batch_rows` rows, or its first message was consumed `batch_ms` ago."""
        if self._batch_started is None:
            return False
        if self.full():
            return True
        return self._clock() - self._batch_started >= self._batch_s

    # ---- consuming -----------------------------------------------------------------------------

    def accept(self, msg: KafkaRecord) -> None:
        """Buffer `msg`'s row, or skip it (already stored, undecodable); either way it is consumed."""
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or offset is None:
            return
        spec = self.tables[topic]
        tp = (topic, partition)
        stored = self._stored_offset(tp, spec.table.name)
        if stored is None:  # revoked while its stored offsets were read: its next owner reads it
            return
        if offset <= stored:
            self._metrics.skipped_stored.labels(spec.table.name).inc()
            self._mark_consumed(tp, offset)
            return
        row = self._row(spec, msg, topic, partition, offset)
        buf = self._mark_consumed(tp, offset)
        if row is not None:
            if not buf.rows:
                buf.first = offset
            buf.rows.append(row)
            buf.stamps.append(msg.timestamp()[1])
            buf.last = offset
            self.buffered_rows += 1

    def _row(self, spec: TableSpec, msg: KafkaRecord, topic: str, partition: int, offset: int) -> Row | None:
        value = msg.value()
        try:
            if value is None:
                raise RowError("message has no value (tombstone)")
            if spec.timed_fn is not None:
                return spec.timed_fn(value, partition, offset, msg.timestamp()[1])
            return spec.row_fn(value, partition, offset)
        except (CodecError, RowError, KeyError) as exc:
            # Only our processor writes these topics: this is a bug signal, not user input.
            self._metrics.undecodable.labels(topic).inc()
            log.error(
                "skipping undecodable message %s[%d]@%d for table %s: %s",
                topic,
                partition,
                offset,
                spec.table.name,
                exc,
            )
            return None

    def _mark_consumed(self, tp: TP, offset: int) -> _PartitionBuffer:
        buf = self._buffers.get(tp)
        if buf is None:
            buf = self._buffers[tp] = _PartitionBuffer()
        buf.next_commit = offset + 1
        if self._batch_started is None:
            self._batch_started = self._consume_started if self._consume_started is not None else self._clock()
        return buf

    def _stored_offset(self, tp: TP, table: str) -> int | None:
        """The highest offset of `tp` in `table`; None when `tp` was revoked while it was being read."""
        stored = self._stored.get(tp)
        if stored is not None:
            return stored
        revocations = self._revocations.get(tp, 0)
        # One query per table serves every newly assigned partition of its topic.
        self._needs_stored.add(tp)
        found = self._stored_offsets(table)
        for need in [n for n in self._needs_stored if n[0] == tp[0]]:
            self._stored[need] = found.get(need[1], -1)
            self._needs_stored.discard(need)
        log.info("table %s already holds offsets up to %s for topic %s", table, dict(found), tp[0])
        if self._revocations.get(tp, 0) != revocations:
            return None  # the message was fetched before the revocation: stale even if it came back
        return self._stored.get(tp)

    # ---- rebalancing ---------------------------------------------------------------------------

    def assigned(self, partitions: Iterable[TP]) -> None:
        """Newly assigned partitions: their stored offsets are read again before their first message."""
        for tp in partitions:
            self._stored.pop(tp, None)
            self._needs_stored.add(tp)

    def revoked(self, partitions: Iterable[TP]) -> None:
        """Drop what revoked partitions buffered, without committing: their next owner reads it again."""
        for tp in partitions:
            buf = self._buffers.pop(tp, None)
            if buf is not None:
                self.buffered_rows -= len(buf.rows)
                if buf.rows:
                    self.generation += 1
            self._stored.pop(tp, None)
            self._needs_stored.discard(tp)
            self._revocations[tp] = self._revocations.get(tp, 0) + 1
        if not self._buffers:
            self._batch_started = None

    # ---- flushing ------------------------------------------------------------------------------

    def batches(self) -> list[TableBatch]:
        """One batch per table with buffered rows, in table order of first partition."""
        grouped: dict[str, TableBatch] = {}
        for (topic, partition), buf in sorted(self._buffers.items()):
            if not buf.rows:
                continue
            layout = self.tables[topic].table
            batch = grouped.setdefault(layout.name, TableBatch(layout, [], {}))
            batch.rows.extend(buf.rows)
            batch.ranges[partition] = (buf.first, buf.last)
        return list(grouped.values())

    def observe_end_to_end(self, done_ms: int) -> None:
        """Record, per buffered row, the time from its Kafka timestamp to `done_ms` (its insert)."""
        # End-to-end: the processor keeps each input's Kafka timestamp on what it derives from it.
        for (topic, _), buf in self._buffers.items():
            histogram = self._metrics.end_to_end_seconds.labels(self.tables[topic].table.name)
            for stamp in buf.stamps:
                if stamp > 0:
                    histogram.observe(max(0, done_ms - stamp) / 1000)

    def commit_offsets(self) -> dict[TP, int]:
        """Per consumed partition, the offset to commit once the batch is stored: last consumed + 1."""
        return {tp: buf.next_commit for tp, buf in sorted(self._buffers.items())}

    def committed(self) -> None:
        """The batch is stored and its offsets committed: start an empty one."""
        self._buffers.clear()
        self.buffered_rows = 0
        self._batch_started = None

    def commit_failed(self) -> None:
        """The batch is stored but the commit failed: drop the rows, keep the offsets for the next commit."""
        self._batch_started = self._clock()
        for buf in self._buffers.values():
            buf.rows.clear()
            buf.stamps.clear()
        self.buffered_rows = 0

    def nothing_to_flush(self) -> None:
        """A flush found no partition consumed: the batch's age starts again with the next message."""
        self._batch_started = None
