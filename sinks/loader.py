"""The sink loader: consume Kafka topics, batch rows per table, insert with a dedup token, then commit.

Offsets are committed only after every insert of the batch returned; on partition assignment the loader
reads the highest stored offset per partition from ClickHouse and skips what is already there, so a
crash between insert and commit never stores a row twice. It never drops a batch it failed to insert.

ClickHouse errors come classified by the writer: a RetryableSinkError (server away, overloaded) is retried
with the same batch and dedup token until it succeeds; a PermanentSinkError (unknown table, wrong
columns, bad data) ends `run()` with SinkStoppedError, whose message names the table, the action and
ClickHouse's answer; any other exception (a bug) ends it as it is. Either way nothing past the last
committed batch is committed, so a sink restarted after the fix re-reads exactly what was not stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from schemas.codec import Codec, CodecError, make_codec
from sinks.metrics import SinkMetrics, default_metrics
from sinks.rows import (
    ALERTS,
    DEAD_LETTERS,
    DRIFT_LINKS,
    EDGES,
    HEALTH,
    RUNS,
    Row,
    RowError,
    TableLayout,
    alert_row,
    dead_letter_row,
    drift_link_row,
    edge_row,
    health_row,
    run_row,
)
from sinks.writer import PermanentSinkError, RetryableSinkError, RowWriter

log = logging.getLogger(__name__)

# Longest single wait inside poll_once, so run() notices `stop` promptly.
_MAX_POLL_S = 0.5
# Upper bound of messages taken from librdkafka per consume() call.
_MAX_FETCH = 10_000

RowFn = Callable[[bytes, int, int], Row]
TP = tuple[str, int]


@dataclass(frozen=True)
class TableSpec:
    """Where one topic's messages go: the table layout and `row_fn(value, partition, offset) -> row`.

    `row_fn` raises CodecError or RowError for a value that cannot become a row.
    """

    table: TableLayout
    row_fn: RowFn


class SinkSettings(Protocol):
    """The fields of `upriver.settings.Settings` the sink needs (sinks/ must not import upriver/)."""

    @property
    def schema_registry_url(self) -> str: ...
    @property
    def sink_group(self) -> str: ...
    @property
    def sink_batch_rows(self) -> int: ...
    @property
    def sink_batch_ms(self) -> int: ...
    @property
    def topics(self) -> SinkTopics: ...
    def kafka_config(self) -> Mapping[str, Any]: ...


class SinkTopics(Protocol):
    @property
    def edges(self) -> str: ...
    @property
    def runs(self) -> str: ...
    @property
    def dlq(self) -> str: ...
    @property
    def alerts(self) -> str: ...
    @property
    def health(self) -> str: ...
    @property
    def drift_links(self) -> str: ...


def backoff_delay(attempt: int, base_s: float = 0.1, cap_s: float = 5.0) -> float:
    """Seconds to wait before retry number `attempt` (0-based): doubling from `base_s`, capped."""
    return float(min(cap_s, base_s * 2 ** min(attempt, 32)))


def dedup_token(table: str, ranges: Mapping[int, tuple[int, int]]) -> str:
    """The insert_deduplication_token of a batch: table and per-partition offset ranges, e.g.
    `edges:0:10-57,1:3-90`. The same batch retried yields the same token."""
    parts = ",".join(f"{p}:{first}-{last}" for p, (first, last) in sorted(ranges.items()))
    return f"{table}:{parts}"


@dataclass
class _PartitionBuffer:
    rows: list[Row] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)  # Kafka timestamps (ms) of the buffered rows
    first: int = -1  # offset of the first buffered row
    last: int = -1  # offset of the last buffered row
    next_commit: int = -1  # last consumed offset + 1 (skipped messages included)


class _StopRequestedError(Exception):
    """Internal: stop was requested while waiting for ClickHouse; abandon without committing."""


class SinkStoppedError(Exception):
    """The loader stopped because a write failed and retrying will not help; the message says why.

    Offsets past the last committed batch stay uncommitted: fix the cause and start the sink again.
    """

    def __init__(self, table: str, action: str, cause: PermanentSinkError) -> None:
        super().__init__(
            f"{action} on table {table} failed permanently, the sink stopped (nothing past the last "
            f"committed batch was committed; fix the cause and restart the sink): {cause}"
        )
        self.table = table
        self.action = action


def _decoded(codec: Codec, to_row: Callable[[Mapping[str, Any], int, int], Row]) -> RowFn:
    def row_fn(value: bytes, partition: int, offset: int) -> Row:
        return to_row(codec.decode(value), partition, offset)

    return row_fn


class SinkLoader:
    """Kafka -> ClickHouse loader over `tables` (topic -> TableSpec); one table is fed by one topic."""

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        group_id: str,
        tables: Mapping[str, TableSpec],
        writer: RowWriter,
        batch_rows: int,
        batch_ms: int,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        metrics: SinkMetrics | None = None,
    ) -> None:
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
        self._tables = dict(tables)
        self._writer = writer
        self._batch_rows = batch_rows
        self._batch_s = batch_ms / 1000.0
        self._sleep = sleep
        self._clock = clock
        self._metrics = default_metrics() if metrics is None else metrics
        self._stop = threading.Event()
        self._buffers: dict[TP, _PartitionBuffer] = {}
        self._buffered_rows = 0
        self._batch_started: float | None = None
        self._stored: dict[TP, int] = {}  # highest offset already in ClickHouse, per assigned partition
        self._needs_stored: set[TP] = set()
        self._closed = False
        config: dict[str, Any] = {
            **kafka_config,
            "group.id": group_id,
            # Offsets are committed by hand, after the insert: never by a timer.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
        self._consumer = Consumer(config)
        self._consumer.subscribe(
            list(self._tables), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )

    # ---- public -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Load until `stop` is set, then flush what is buffered (if ClickHouse takes it) and close.

        Raises SinkStoppedError when a write fails permanently (see the module's docstring).
        """
        self._stop = stop
        try:
            while not stop.is_set():
                self.poll_once()
            self._flush()
        finally:
            self.close()

    def poll_once(self) -> int:
        """One consume call, then a flush if the batch is full or old enough; returns rows inserted."""
        messages = self._consumer.consume(num_messages=self._fetch_size(), timeout=self._poll_timeout())
        try:
            for msg in messages:
                self._accept(msg)
        except _StopRequestedError:
            return 0
        if self._due():
            return self._flush()
        return 0

    def close(self) -> None:
        """Leave the group without committing anything not yet inserted. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    # ---- consuming ----------------------------------------------------------------------------

    def _fetch_size(self) -> int:
        return max(1, min(_MAX_FETCH, self._batch_rows - self._buffered_rows))

    def _poll_timeout(self) -> float:
        if self._batch_started is None:
            return _MAX_POLL_S
        remaining = self._batch_started + self._batch_s - self._clock()
        return max(0.0, min(_MAX_POLL_S, remaining))

    def _due(self) -> bool:
        if self._batch_started is None:
            return False
        if self._buffered_rows >= self._batch_rows:
            return True
        return self._clock() - self._batch_started >= self._batch_s

    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise KafkaException(err)
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("kafka consumer error: %s", err)
            return
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or offset is None:
            return
        spec = self._tables[topic]
        tp = (topic, partition)
        if offset <= self._stored_offset(tp, spec.table.name):
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
            self._buffered_rows += 1

    def _row(self, spec: TableSpec, msg: Message, topic: str, partition: int, offset: int) -> Row | None:
        value = msg.value()
        try:
            if value is None:
                raise RowError("message has no value (tombstone)")
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
            self._batch_started = self._clock()
        return buf

    def _stored_offset(self, tp: TP, table: str) -> int:
        stored = self._stored.get(tp)
        if stored is not None:
            return stored
        # One query per table serves every newly assigned partition of its topic.
        self._needs_stored.add(tp)
        found = self._with_retry(table, "read stored offsets", lambda: self._writer.max_offsets(table))
        for need in [n for n in self._needs_stored if n[0] == tp[0]]:
            self._stored[need] = found.get(need[1], -1)
            self._needs_stored.discard(need)
        log.info("table %s already holds offsets up to %s for topic %s", table, found, tp[0])
        return self._stored[tp]

    # ---- rebalancing --------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for p in partitions:
            tp = (p.topic, p.partition)
            self._stored.pop(tp, None)
            self._needs_stored.add(tp)
        log.info("assigned %s", sorted((p.topic, p.partition) for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Rows not yet inserted are dropped, not flushed: their offsets are uncommitted, so the new
        # owner reads them again; flushing here could block the rebalance while ClickHouse is away.
        for p in partitions:
            tp = (p.topic, p.partition)
            buf = self._buffers.pop(tp, None)
            if buf is not None:
                self._buffered_rows -= len(buf.rows)
            self._stored.pop(tp, None)
            self._needs_stored.discard(tp)
        if not self._buffers:
            self._batch_started = None
        log.info("revoked %s", sorted((p.topic, p.partition) for p in partitions))

    # ---- flushing -----------------------------------------------------------------------------

    def _flush(self) -> int:
        """Insert every table's batch, then commit; nothing is committed unless all inserts returned."""
        if not self._buffers:
            self._batch_started = None
            return 0
        inserted = 0
        try:
            for table, rows, ranges in self._batches():
                token = dedup_token(table.name, ranges)
                started = self._clock()
                self._with_retry(table.name, "insert", partial(self._insert, table, rows, token))
                self._metrics.insert_seconds.labels(table.name).observe(self._clock() - started)
                self._metrics.batch_rows.labels(table.name).observe(len(rows))
                self._metrics.rows_inserted.labels(table.name).inc(len(rows))
                inserted += len(rows)
        except _StopRequestedError:
            log.warning("stopping with an uninserted batch; its offsets stay uncommitted and will be re-read")
            return inserted
        # End-to-end: the processor keeps each input's Kafka timestamp on what it derives from it.
        done_ms = time.time_ns() // 1_000_000
        for (topic, _), buf in self._buffers.items():
            histogram = self._metrics.end_to_end_seconds.labels(self._tables[topic].table.name)
            for stamp in buf.stamps:
                if stamp > 0:
                    histogram.observe(max(0, done_ms - stamp) / 1000)
        self._commit()
        return inserted

    def _batches(self) -> list[tuple[TableLayout, list[Row], dict[int, tuple[int, int]]]]:
        grouped: dict[str, tuple[TableLayout, list[Row], dict[int, tuple[int, int]]]] = {}
        for (topic, partition), buf in sorted(self._buffers.items()):
            if not buf.rows:
                continue
            layout = self._tables[topic].table
            _, rows, ranges = grouped.setdefault(layout.name, (layout, [], {}))
            rows.extend(buf.rows)
            ranges[partition] = (buf.first, buf.last)
        return list(grouped.values())

    def _insert(self, table: TableLayout, rows: list[Row], token: str) -> None:
        self._writer.insert(table.name, rows, table.columns, table.types, token)

    def _commit(self) -> None:
        offsets = [TopicPartition(t, p, buf.next_commit) for (t, p), buf in sorted(self._buffers.items())]
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The rows are stored; if this consumer lost the partitions, the next owner skips them
            # via max_offsets. Keep the offsets and commit them with the next batch.
            log.warning("offset commit failed, will retry with the next batch: %s", exc)
            self._batch_started = self._clock()
            for buf in self._buffers.values():
                buf.rows.clear()
                buf.stamps.clear()
            self._buffered_rows = 0
            return
        for tp in results or []:
            if tp.error is not None:
                log.warning("offset commit failed for %s[%d]: %s", tp.topic, tp.partition, tp.error)
        self._buffers.clear()
        self._buffered_rows = 0
        self._batch_started = None

    def _with_retry(self, table: str, action: str, call: Callable[[], Any]) -> Any:
        """`call()` until it returns; RetryableSinkError waits with capped back-off, forever or until stop.

        PermanentSinkError is raised as SinkStoppedError (the batch stays uncommitted).
        """
        attempt = 0
        while True:
            try:
                return call()
            except RetryableSinkError as exc:
                self._metrics.insert_failures.labels(table).inc()
                if self._stop.is_set():
                    raise _StopRequestedError from exc
                delay = backoff_delay(attempt)
                attempt += 1
                log.warning(
                    "%s on table %s failed (attempt %d), retrying the same batch in %.1fs: %s",
                    action,
                    table,
                    attempt,
                    delay,
                    exc,
                )
                self._sleep(delay)
            except PermanentSinkError as exc:
                self._metrics.insert_failures.labels(table).inc()
                raise SinkStoppedError(table, action, exc) from exc
            except Exception:  # not a ClickHouse answer (a bug, a crash): propagates as it is
                self._metrics.insert_failures.labels(table).inc()
                raise


def build_sink(settings: SinkSettings, writer: RowWriter, **kwargs: Any) -> SinkLoader:
    """The loader wiring the edges topic -> `edges`, runs -> `runs` and the dead-letter topic -> `dead_letters`.

    `kwargs` go to SinkLoader (sleep, clock, metrics).
    """
    url = settings.schema_registry_url
    t = settings.topics
    edges, runs, dlq = t.edges, t.runs, t.dlq
    tables = {
        edges: TableSpec(EDGES, _decoded(make_codec("edge", url, edges), edge_row)),
        runs: TableSpec(RUNS, _decoded(make_codec("run", url, runs), run_row)),
        dlq: TableSpec(DEAD_LETTERS, _decoded(make_codec("dead_letter", url, dlq), dead_letter_row)),
        t.alerts: TableSpec(ALERTS, _decoded(make_codec("alert", url, t.alerts), alert_row)),
        t.health: TableSpec(HEALTH, _decoded(make_codec("health_metric", url, t.health), health_row)),
        t.drift_links: TableSpec(DRIFT_LINKS, _decoded(make_codec("drift_link", url, t.drift_links), drift_link_row)),
    }
    return SinkLoader(
        settings.kafka_config(),
        settings.sink_group,
        tables,
        writer,
        batch_rows=settings.sink_batch_rows,
        batch_ms=settings.sink_batch_ms,
        **kwargs,
    )
