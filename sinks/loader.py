"""The sink loader: consume Kafka topics, batch rows per table, insert with a dedup token, then commit.

This is the wiring: the only sinks module that imports confluent-kafka. `build_sink` makes the real
consumer (`KafkaConsumer`, the `sinks.batching.ConsumerPort` adapter) and a `SinkLoader`, the loop that
drives a consumer port, a `sinks.batching.Batcher` and a `sinks.writer.RowWriter`.

Offsets are committed only after every insert of the batch returned; on partition assignment the loader
reads the highest stored offset per partition from ClickHouse and skips what is already there, so a
crash between insert and commit never stores a row twice. It never drops a batch it failed to insert.

ClickHouse errors come classified by the writer: a RetryableSinkError (server away, overloaded) is retried
with the same batch and dedup token until it succeeds. Meanwhile every assigned partition is paused and
the consumer is still polled between attempts, so the group keeps this member (max.poll.interval.ms)
and rebalances run; the partitions are resumed once ClickHouse answers. A partition revoked meanwhile
loses its buffered rows, uncommitted (its next owner reads them again), and the rest of the batch is
retried without them. A PermanentSinkError (unknown table, wrong columns, bad data) ends `run()` with
SinkStoppedError, whose message names the table, the action and ClickHouse's answer; any other
exception (a bug) ends it as it is. Either way nothing past the last committed batch is committed, so a
sink restarted after the fix re-reads exactly what was not stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from sinks.batching import (
    TP,
    Batcher,
    CommitError,
    ConsumerPort,
    KafkaRecord,
    Rebalance,
    TableBatch,
    TableSpec,
    check_tables,
)
from sinks.metrics import SinkMetrics, default_metrics
from sinks.tables import SinkSettings, SinkTopics, sink_tables
from sinks.writer import PermanentSinkError, RetryableSinkError, RowWriter

__all__ = [
    "KafkaConsumer",
    "SinkLoader",
    "SinkSettings",
    "SinkStoppedError",
    "SinkTopics",
    "TableSpec",
    "backoff_delay",
    "build_sink",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def backoff_delay(attempt: int, base_s: float = 0.1, cap_s: float = 5.0) -> float:
    """Seconds to wait before retry number `attempt` (0-based): doubling from `base_s`, capped."""
    return float(min(cap_s, base_s * 2 ** min(attempt, 32)))


class _StopRequestedError(Exception):
    """Internal: stop was requested while waiting for ClickHouse; abandon without committing."""


class _BatchChangedError(Exception):
    """Internal: a revocation dropped rows of the batch being retried; build the batch again."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"the batch changed after {attempts} failed attempts")
        self.attempts = attempts  # the back-off goes on from there: ClickHouse is still away


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


# ---- the real consumer ----------------------------------------------------------------------------


def _pairs(partitions: Sequence[TopicPartition]) -> list[TP]:
    return [(p.topic, p.partition) for p in partitions]


class KafkaConsumer:
    """`ConsumerPort` over a confluent-kafka Consumer; offsets are committed by hand, never by a timer."""

    def __init__(self, kafka_config: Mapping[str, Any], group_id: str) -> None:
        config: dict[str, Any] = {
            **kafka_config,
            "group.id": group_id,
            # Offsets are committed by hand, after the insert: never by a timer.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
        self._consumer = Consumer(config)

    def subscribe(self, topics: Sequence[str], on_assign: Rebalance, on_revoke: Rebalance) -> None:
        def assigned(_: Consumer, partitions: list[TopicPartition]) -> None:
            on_assign(_pairs(partitions))

        def revoked(_: Consumer, partitions: list[TopicPartition]) -> None:
            on_revoke(_pairs(partitions))

        self._consumer.subscribe(list(topics), on_assign=assigned, on_revoke=revoked, on_lost=revoked)

    def consume(self, num_messages: int, timeout: float) -> list[KafkaRecord]:
        out: list[KafkaRecord] = []
        for msg in self._consumer.consume(num_messages=num_messages, timeout=timeout):
            err = msg.error()
            if err is None:
                out.append(msg)
            elif err.fatal():
                raise KafkaException(err)
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("kafka consumer error: %s", err)
        return out

    def commit(self, offsets: Mapping[TP, int]) -> dict[TP, str]:
        tps = [TopicPartition(t, p, offset) for (t, p), offset in sorted(offsets.items())]
        try:
            results = self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            raise CommitError(str(exc)) from exc
        return {(tp.topic, tp.partition): str(tp.error) for tp in results or [] if tp.error is not None}

    def pause(self, partitions: Sequence[TP]) -> None:
        self._consumer.pause([TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: Sequence[TP]) -> None:
        self._consumer.resume([TopicPartition(t, p) for t, p in partitions])

    def assignment(self) -> list[TP]:
        return _pairs(self._consumer.assignment())

    def close(self) -> None:
        self._consumer.close()


# ---- the loop -------------------------------------------------------------------------------------


class SinkLoader:
    """Kafka -> ClickHouse loader over `tables` (topic -> TableSpec); one table is fed by one topic.

    Subscribes `consumer` to the topics. `sleep` waits between retries, `clock` times batches.
    """

    def __init__(
        self,
        consumer: ConsumerPort,
        tables: Mapping[str, TableSpec],
        writer: RowWriter,
        batch_rows: int,
        batch_ms: int,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self._metrics = default_metrics() if metrics is None else metrics
        self._batcher = Batcher(tables, batch_rows, batch_ms, self._read_stored, self._metrics, clock)
        self._writer = writer
        self._sleep = sleep
        self._clock = clock
        self._stop = threading.Event()
        self._inbox: deque[KafkaRecord] = deque()  # consumed, not yet accepted (polled while paused)
        self._paused: set[TP] = set()
        self._closed = False
        self._consumer = consumer
        consumer.subscribe(list(self._batcher.tables), self._on_assign, self._on_revoke)

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
        """One consume call (none while messages polled during a pause wait), then a flush if the batch
        is full or old enough; returns rows inserted."""
        batcher = self._batcher
        if not self._inbox:
            timeout = batcher.poll_timeout()
            batcher.consuming()
            self._inbox.extend(self._consumer.consume(batcher.fetch_size(), timeout))
        try:
            while self._inbox and not batcher.full():
                batcher.accept(self._inbox.popleft())
        except _StopRequestedError:
            return 0
        if batcher.due():
            return self._flush()
        return 0

    def close(self) -> None:
        """Leave the group without committing anything not yet inserted. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    # ---- rebalancing --------------------------------------------------------------------------

    def _on_assign(self, partitions: list[TP]) -> None:
        self._batcher.assigned(partitions)
        log.info("assigned %s", sorted(partitions))

    def _on_revoke(self, partitions: list[TP]) -> None:
        # Rows not yet inserted are dropped, not flushed: their offsets are uncommitted, so the new
        # owner reads them again; flushing here could block the rebalance while ClickHouse is away.
        gone = set(partitions)
        self._batcher.revoked(gone)
        paused = sorted(self._paused & gone)
        if paused:  # librdkafka keeps a pause across a revocation: a partition assigned again must fetch
            self._consumer.resume(paused)
            self._paused -= gone
        kept = [m for m in self._inbox if (m.topic(), m.partition()) not in gone]
        self._inbox.clear()
        self._inbox.extend(kept)
        log.info("revoked %s", sorted(partitions))

    # ---- flushing -----------------------------------------------------------------------------

    def _flush(self) -> int:
        """Insert every table's batch, then commit; nothing is committed unless all inserts returned."""
        if self._batcher.empty:
            self._batcher.nothing_to_flush()
            return 0
        done: set[str] = set()  # tables whose batch is stored
        inserted = attempts = 0
        try:
            while True:
                try:
                    for batch in self._batcher.batches():
                        if batch.table.name not in done:
                            self._insert(batch, attempts)
                            done.add(batch.table.name)
                            inserted += len(batch.rows)
                            attempts = 0
                    break
                except _BatchChangedError as changed:
                    attempts = changed.attempts
                    log.info("a revocation dropped rows of the batch; retrying the rest of it")
        except _StopRequestedError:
            log.warning("stopping with an uninserted batch; its offsets stay uncommitted and will be re-read")
            return inserted
        self._batcher.observe_end_to_end(time.time_ns() // 1_000_000)
        self._commit()
        return inserted

    def _insert(self, batch: TableBatch, attempts: int) -> None:
        table = batch.table
        insert = partial(self._writer.insert, table.name, batch.rows, table.columns, table.types, batch.token)
        started = self._clock()
        self._with_retry(table.name, "insert", insert, self._batcher.generation, attempts)
        self._metrics.insert_seconds.labels(table.name).observe(self._clock() - started)
        self._metrics.batch_rows.labels(table.name).observe(len(batch.rows))
        self._metrics.rows_inserted.labels(table.name).inc(len(batch.rows))

    def _commit(self) -> None:
        offsets = self._batcher.commit_offsets()
        if not offsets:  # every consumed partition was revoked while the batch was retried
            self._batcher.committed()
            return
        try:
            failed = self._consumer.commit(offsets)
        except CommitError as exc:
            # The rows are stored; if this consumer lost the partitions, the next owner skips them
            # via max_offsets. Keep the offsets and commit them with the next batch.
            log.warning("offset commit failed, will retry with the next batch: %s", exc)
            self._batcher.commit_failed()
            return
        for (topic, partition), err in sorted(failed.items()):
            log.warning("offset commit failed for %s[%d]: %s", topic, partition, err)
        self._batcher.committed()

    def _read_stored(self, table: str) -> Mapping[int, int]:
        return self._with_retry(table, "read stored offsets", lambda: self._writer.max_offsets(table))

    # ---- ClickHouse away ----------------------------------------------------------------------

    def _with_retry(
        self, table: str, action: str, call: Callable[[], T], generation: int | None = None, attempt: int = 0
    ) -> T:
        """`call()` until it returns; RetryableSinkError waits with capped back-off (from retry number
        `attempt`), forever or until stop, the assigned partitions paused (`_wait_paused`) meanwhile.

        PermanentSinkError is raised as SinkStoppedError (the batch stays uncommitted). With a batch's
        `generation`, a revocation that changed the batch while waiting raises _BatchChangedError.
        """
        while True:
            try:
                result = call()
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
                self._wait_paused(delay)
                if generation is not None and generation != self._batcher.generation:
                    raise _BatchChangedError(attempt) from exc
            except PermanentSinkError as exc:
                self._metrics.insert_failures.labels(table).inc()
                raise SinkStoppedError(table, action, exc) from exc
            except Exception:  # not a ClickHouse answer (a bug, a crash): propagates as it is
                self._metrics.insert_failures.labels(table).inc()
                raise
            else:
                self._resume()
                return result

    def _wait_paused(self, delay: float) -> None:
        """Sleep `delay` with every assigned partition paused, then poll once, so the group keeps this
        member and rebalance callbacks run. A paused partition yields nothing; what a newly assigned one
        yields before it is paused too waits in the inbox, in order, for the loop."""
        self._pause_assigned()
        self._sleep(delay)
        self._inbox.extend(self._consumer.consume(self._batcher.fetch_size(), 0.0))
        self._pause_assigned()

    def _pause_assigned(self) -> None:
        new = sorted(tp for tp in self._consumer.assignment() if tp not in self._paused)
        if new:
            self._consumer.pause(new)
            self._paused.update(new)
            log.info("paused %s while ClickHouse is away", new)

    def _resume(self) -> None:
        if not self._paused:
            return
        assigned = set(self._consumer.assignment())
        back = sorted(self._paused & assigned)
        self._paused.clear()
        if back:
            self._consumer.resume(back)
            log.info("resumed %s", back)


# ---- wiring ---------------------------------------------------------------------------------------


def build_sink(
    settings: SinkSettings, writer: RowWriter, consumer: ConsumerPort | None = None, **kwargs: Any
) -> SinkLoader:
    """The loader over `sink_tables(settings)`, consuming with `consumer` or else a new KafkaConsumer of
    the settings' Kafka and sink group.

    `kwargs` go to SinkLoader (sleep, clock, metrics).
    """
    tables = sink_tables(settings)
    check_tables(tables, settings.sink_batch_rows, settings.sink_batch_ms)  # before joining the group
    if consumer is None:
        consumer = KafkaConsumer(settings.kafka_config(), settings.sink_group)
    return SinkLoader(
        consumer,
        tables,
        writer,
        batch_rows=settings.sink_batch_rows,
        batch_ms=settings.sink_batch_ms,
        **kwargs,
    )
