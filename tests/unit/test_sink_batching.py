"""The sink's batching and its loop without a broker: a list-backed consumer and an in-memory writer.

Batches flush at their size and age limits; offsets are committed only after every insert returned, and
exactly past what was consumed; offsets ClickHouse holds are skipped; while the writer fails the assigned
partitions are paused, the consumer is still polled, and they are resumed after; a partition revoked
meanwhile loses nothing; undecodable messages are skipped and counted. Plus the sinks/ module limits.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import make_codec
from schemas.model import Edge
from sinks.batching import TP, CommitError, KafkaRecord, Rebalance, TableSpec, dedup_token
from sinks.loader import SinkLoader, SinkStoppedError, build_sink
from sinks.metrics import SinkMetrics
from sinks.rows import Row, RowError, TableLayout
from sinks.writer import PermanentSinkError, RetryableSinkError
from upriver.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

_COLUMNS = ("body", "kafka_partition", "kafka_offset")
_TYPES = ("String", "UInt32", "UInt64")
EVENTS = TableLayout("events", _COLUMNS, _TYPES)
NOTES = TableLayout("notes", _COLUMNS, _TYPES)
EV, NT = "ev", "nt"  # topics


def to_row(value: bytes, partition: int, offset: int) -> Row:
    if not value.startswith(b"ok:"):
        raise RowError(f"not a row: {value[:10]!r}")
    return (value[3:].decode(), partition, offset)


TABLES = {EV: TableSpec(EVENTS, to_row), NT: TableSpec(NOTES, to_row)}


# ---- doubles ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    t: str
    p: int
    o: int
    v: bytes | None
    ts: int = 0

    def topic(self) -> str | None:
        return self.t

    def partition(self) -> int | None:
        return self.p

    def offset(self) -> int | None:
        return self.o

    def value(self) -> bytes | None:
        return self.v

    def timestamp(self) -> tuple[int, int]:
        return (1, self.ts)


def msgs(topic: str, partition: int, n: int, start: int = 0) -> list[Msg]:
    return [Msg(topic, partition, o, f"ok:{topic}-{partition}-{o}".encode()) for o in range(start, start + n)]


class Clock:
    """A fake monotonic clock; `sleep` records the wait and moves the clock on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeConsumer:
    """A ConsumerPort over a fixed list of messages: each partition delivers, in order, from its position
    (set to its committed offset when assigned) unless paused. At its first consume it is assigned every
    partition of the list; `events[n]` runs before the n-th consume delivers (rebalances). Like librdkafka,
    a pause outlives a revocation: a partition revoked paused and assigned again delivers nothing."""

    def __init__(self, messages: Sequence[Msg], clock: Clock) -> None:
        self.logs: dict[TP, list[Msg]] = {}
        for m in messages:
            self.logs.setdefault((m.t, m.p), []).append(m)
        self.clock = clock
        self.assigned: list[TP] = []
        self.position: dict[TP, int] = {}
        self.committed: dict[TP, int] = {}
        self.commits: list[dict[TP, int]] = []
        self.pauses: list[list[TP]] = []
        self.resumes: list[list[TP]] = []
        self.paused: set[TP] = set()
        self.polls: list[tuple[int, float]] = []  # (num_messages, timeout) of each consume
        self.poll_times: list[float] = []
        self.delivered: list[int] = []  # messages returned by each consume
        self.events: dict[int, Callable[[FakeConsumer], None]] = {}
        self.fail_commits = 0
        self.closed = False
        self.topics: list[str] = []
        self._on_assign: Rebalance = lambda _: None
        self._on_revoke: Rebalance = lambda _: None

    def subscribe(self, topics: Sequence[str], on_assign: Rebalance, on_revoke: Rebalance) -> None:
        self.topics, self._on_assign, self._on_revoke = list(topics), on_assign, on_revoke

    def consume(self, num_messages: int, timeout: float) -> list[KafkaRecord]:
        assert not self.closed
        self.polls.append((num_messages, timeout))
        self.poll_times.append(self.clock.now)
        if len(self.polls) == 1:
            self.assign(sorted(tp for tp in self.logs if tp[0] in self.topics))
        event = self.events.pop(len(self.polls), None)
        if event is not None:
            event(self)
        out: list[KafkaRecord] = []
        for tp in self.assigned:
            for m in self.logs.get(tp, []):
                if tp in self.paused or len(out) >= num_messages:
                    break
                if m.o >= self.position[tp]:
                    out.append(m)
                    self.position[tp] = m.o + 1
        self.delivered.append(len(out))
        return out

    def assign(self, partitions: list[TP]) -> None:
        for tp in partitions:
            self.position[tp] = self.committed.get(tp, 0)
            self.assigned.append(tp)
        self._on_assign(list(partitions))

    def revoke(self, partitions: list[TP]) -> None:
        self._on_revoke(list(partitions))
        for tp in partitions:
            self.assigned.remove(tp)  # like librdkafka, a paused partition stays paused when assigned again

    def commit(self, offsets: Mapping[TP, int]) -> dict[TP, str]:
        assert set(offsets) <= set(self.assigned), f"commit of partitions not assigned: {offsets}"
        if self.fail_commits:
            self.fail_commits -= 1
            raise CommitError("simulated: the coordinator is away")
        self.commits.append(dict(offsets))
        self.committed.update(offsets)
        return {}

    def pause(self, partitions: Sequence[TP]) -> None:
        assert set(partitions) <= set(self.assigned)
        self.pauses.append(list(partitions))
        self.paused |= set(partitions)

    def resume(self, partitions: Sequence[TP]) -> None:
        assert set(partitions) <= self.paused
        self.resumes.append(list(partitions))
        self.paused -= set(partitions)

    def assignment(self) -> list[TP]:
        return list(self.assigned)

    def close(self) -> None:
        self.closed = True


@dataclass
class Call:
    table: str
    token: str
    rows: int
    ok: bool
    commits_before: int  # offset commits made before this insert


class FakeWriter:
    """A RowWriter in memory, deduplicating on the token like ClickHouse. `fail[table]` inserts into
    `table` fail retryably first (`permanent`: every insert fails permanently); `lookup_failures`
    max_offsets calls fail retryably first; `on_fail(n)` runs before the n-th failure is raised."""

    def __init__(
        self,
        consumer: FakeConsumer,
        fail: dict[str, int] | None = None,
        lookup_failures: int = 0,
        permanent: bool = False,
    ) -> None:
        self.consumer = consumer
        self.fail = dict(fail or {})
        self.lookup_failures = lookup_failures
        self.permanent = permanent
        self.stored: dict[str, list[Row]] = {}
        self.tokens: set[str] = set()
        self.calls: list[Call] = []
        self.lookups: list[str] = []
        self.failures = 0
        self.on_fail: Callable[[int], None] = lambda _: None

    def insert(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], types: Sequence[str], dedup_token: str
    ) -> None:
        assert tuple(columns) == _COLUMNS and tuple(types) == _TYPES
        call = Call(table, dedup_token, len(rows), True, len(self.consumer.commits))
        self.calls.append(call)
        if self.permanent:
            call.ok = False
            raise PermanentSinkError(f"simulated: table {table} does not exist")
        if self.fail.get(table, 0) > 0:
            self.fail[table] -= 1
            call.ok = False
            self._failed()
        if dedup_token not in self.tokens:
            self.tokens.add(dedup_token)
            self.stored.setdefault(table, []).extend(tuple(r) for r in rows)

    def max_offsets(self, table: str) -> dict[int, int]:
        self.lookups.append(table)
        if self.lookup_failures > 0:
            self.lookup_failures -= 1
            self._failed()
        out: dict[int, int] = {}
        for _, partition, offset in self.stored.get(table, []):
            out[partition] = max(out.get(partition, -1), offset)
        return out

    def _failed(self) -> None:
        self.failures += 1
        self.on_fail(self.failures)
        raise RetryableSinkError("simulated: ClickHouse is away")

    def positions(self, table: str = "events") -> list[tuple[int, int]]:
        return sorted((p, o) for _, p, o in self.stored.get(table, []))


@dataclass
class Rig:
    clock: Clock
    consumer: FakeConsumer
    writer: FakeWriter
    loader: SinkLoader
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def polls(self, n: int, advance: float = 0.0) -> None:
        for _ in range(n):
            self.loader.poll_once()
            self.clock.now += advance


def rig(
    messages: Sequence[Msg],
    batch_rows: int = 100,
    batch_ms: int = 200,
    fail: dict[str, int] | None = None,
    **writer_args: Any,
) -> Rig:
    clock = Clock()
    consumer = FakeConsumer(messages, clock)
    writer = FakeWriter(consumer, fail, **writer_args)
    registry = CollectorRegistry()
    metrics = SinkMetrics(registry)
    loader = SinkLoader(consumer, TABLES, writer, batch_rows, batch_ms, clock.sleep, clock, metrics)
    return Rig(clock, consumer, writer, loader, registry)


def backoffs(n: int) -> list[float]:
    """The waits before retries 1..n: doubling from 0.1 s, capped at 5 s."""
    return [min(5.0, 0.1 * 2**i) for i in range(n)]


# ---- batching --------------------------------------------------------------------------------------


def test_a_batch_flushes_at_batch_rows_rows_and_at_batch_ms_age() -> None:
    r = rig(msgs(EV, 0, 7), batch_rows=3, batch_ms=200)
    r.polls(3)  # 3 rows (full: flushed), 3 rows (flushed), 1 row (young: kept)
    assert [c.rows for c in r.writer.calls] == [3, 3]
    assert r.consumer.commits == [{(EV, 0): 3}, {(EV, 0): 6}]
    r.polls(1)  # nothing new, the batch is 0 s old
    assert len(r.writer.calls) == 2
    r.clock.now += 0.2
    r.polls(1)  # 200 ms old: flushed
    assert [c.token for c in r.writer.calls] == ["events:0:0-2", "events:0:3-5", "events:0:6-6"]
    assert r.consumer.commits[-1] == {(EV, 0): 7}
    # consume asks for the room left in the batch and waits at most until the batch is due; with no
    # batch begun, at most batch_ms (not MAX_POLL_S): its messages may have come at the wait's start
    assert r.consumer.polls == [(3, 0.2), (3, 0.2), (3, 0.2), (2, 0.2), (2, 0.0)]
    assert r.sample("upriver_sink_rows_inserted_total", table="events") == 7
    assert r.sample("upriver_sink_batch_rows_count", table="events") == 3


def test_a_batch_is_as_old_as_the_consume_that_brought_its_first_message() -> None:
    # The consume that returns the first message waited its whole timeout (batch_ms): the message may have
    # come at its start, so the batch is due when the consume returns, not batch_ms later.
    r = rig(msgs(EV, 0, 1), batch_rows=10, batch_ms=200)

    def slow_consume(consumer: FakeConsumer) -> None:
        consumer.clock.now += 0.2

    r.consumer.events[1] = slow_consume
    r.polls(1)
    assert [(c.token, c.rows) for c in r.writer.calls] == [("events:0:0-0", 1)]
    assert r.consumer.commits == [{(EV, 0): 1}]


def test_offsets_are_committed_after_every_insert_and_exactly_past_what_was_consumed() -> None:
    r = rig([*msgs(EV, 0, 4), *msgs(EV, 1, 2), *msgs(NT, 0, 3)])
    r.polls(1, advance=0.25)
    assert r.writer.calls == []  # not due yet
    r.polls(1)
    assert [(c.table, c.token, c.rows) for c in r.writer.calls] == [
        ("events", dedup_token("events", {0: (0, 3), 1: (0, 1)}), 6),
        ("notes", dedup_token("notes", {0: (0, 2)}), 3),
    ]
    assert all(c.commits_before == 0 for c in r.writer.calls)
    assert r.consumer.commits == [{(EV, 0): 4, (EV, 1): 2, (NT, 0): 3}]
    assert r.writer.positions("events") == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]


def test_offsets_clickhouse_already_holds_are_skipped() -> None:
    r = rig([*msgs(EV, 0, 10), *msgs(EV, 1, 3)])
    r.writer.stored["events"] = [(f"ev-0-{o}", 0, o) for o in range(5)]  # stored, never committed
    r.polls(2, advance=0.25)
    assert r.writer.lookups == ["events"]  # one query serves every newly assigned partition of the topic
    assert [(c.token, c.rows) for c in r.writer.calls] == [(dedup_token("events", {0: (5, 9), 1: (0, 2)}), 8)]
    assert r.writer.positions() == [*((0, o) for o in range(10)), (1, 0), (1, 1), (1, 2)]
    assert r.consumer.commits == [{(EV, 0): 10, (EV, 1): 3}]
    assert r.sample("upriver_sink_skipped_already_stored_total", table="events") == 5


def test_undecodable_messages_are_skipped_counted_logged_and_committed_past(caplog: pytest.LogCaptureFixture) -> None:
    bad = [Msg(EV, 0, 1, b"garbage"), Msg(EV, 0, 2, None)]  # a producer bug, a tombstone
    r = rig([Msg(EV, 0, 0, b"ok:a"), *bad, Msg(EV, 0, 3, b"ok:b")])
    with caplog.at_level(logging.ERROR, logger="sinks.loader"):
        r.polls(2, advance=0.25)
    assert r.writer.positions() == [(0, 0), (0, 3)]
    assert r.consumer.commits == [{(EV, 0): 4}]
    assert r.sample("upriver_sink_undecodable_messages_total", topic=EV) == 2
    logged = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.ERROR]
    assert [line.split(":")[0] for line in logged] == [
        "skipping undecodable message ev[0]@1 for table events",
        "skipping undecodable message ev[0]@2 for table events",
    ]


def test_a_failed_commit_is_made_with_the_next_batch(caplog: pytest.LogCaptureFixture) -> None:
    r = rig(msgs(EV, 0, 4), batch_rows=2)
    r.consumer.fail_commits = 1
    with caplog.at_level(logging.WARNING, logger="sinks.loader"):
        r.polls(2)
    assert [c.token for c in r.writer.calls] == ["events:0:0-1", "events:0:2-3"]
    assert r.consumer.commits == [{(EV, 0): 4}]
    assert any("offset commit failed, will retry with the next batch" in m for m in caplog.messages)


# ---- ClickHouse away -------------------------------------------------------------------------------


def test_partitions_are_paused_while_the_writer_fails_and_resumed_after() -> None:
    r = rig([*msgs(EV, 0, 4), *msgs(EV, 1, 4)], batch_rows=4, fail={"events": 3})
    everything = [(EV, 0), (EV, 1)]
    r.polls(1)  # (ev,0)'s four rows fill the batch; three failed inserts, then it goes in
    assert [(c.token, c.ok, c.commits_before) for c in r.writer.calls] == [
        *[("events:0:0-3", False, 0)] * 3,
        ("events:0:0-3", True, 0),
    ]
    assert r.clock.sleeps == backoffs(3)
    assert r.consumer.pauses == [everything]
    assert r.consumer.resumes == [everything]
    # polled after every wait, paused: nothing came, though (ev,1) had four messages waiting
    assert r.consumer.polls[1:] == [(1, 0.0)] * 3
    assert r.consumer.delivered == [4, 0, 0, 0]
    assert r.consumer.commits == [{(EV, 0): 4}]
    r.polls(1)  # resumed: (ev,1) is read
    assert r.consumer.commits == [{(EV, 0): 4}, {(EV, 1): 4}]
    assert r.writer.positions() == [(p, o) for p in (0, 1) for o in range(4)]
    assert r.sample("upriver_sink_insert_failures_total", table="events") == 3


def test_the_consumer_is_polled_at_least_every_capped_backoff_during_a_long_outage() -> None:
    failures = 12
    r = rig(msgs(EV, 0, 5), batch_rows=5, fail={"events": failures})
    r.polls(1)
    assert r.clock.sleeps == backoffs(failures)
    assert len(r.consumer.polls) == 1 + failures
    gaps = [b - a for a, b in zip(r.consumer.poll_times, r.consumer.poll_times[1:], strict=False)]
    assert max(gaps) == 5.0  # max.poll.interval.ms (5 min by default) never comes near
    assert r.consumer.commits == [{(EV, 0): 5}]
    assert len(r.consumer.pauses) == len(r.consumer.resumes) == 1


def test_a_partition_revoked_while_paused_loses_nothing() -> None:
    r = rig([*msgs(EV, 0, 3), *msgs(EV, 1, 3)], fail={"events": 2})
    r.consumer.events[3] = lambda c: c.revoke([(EV, 1)])  # the first poll while paused
    r.consumer.events[4] = lambda c: c.assign([(EV, 1)])  # given back: read again from its commit
    r.polls(2, advance=0.25)  # read all six, flush: fail, revoke, fail, re-assign, insert
    assert [(c.token, c.ok) for c in r.writer.calls] == [
        ("events:0:0-2,1:0-2", False),
        ("events:0:0-2", False),  # the revoked partition's rows are dropped, not inserted
        ("events:0:0-2", True),
    ]
    assert r.consumer.commits == [{(EV, 0): 3}]  # nothing for the revoked partition
    assert r.clock.sleeps == backoffs(2)  # the back-off goes on: ClickHouse is still away
    assert r.consumer.pauses == [[(EV, 0), (EV, 1)], [(EV, 1)]]
    assert r.consumer.resumes == [[(EV, 1)], [(EV, 0), (EV, 1)]]  # on revocation, then after the insert
    r.polls(2, advance=0.25)  # what the re-assigned partition delivered while paused waited in order
    assert r.writer.calls[-1].token == "events:1:0-2"
    assert r.consumer.commits == [{(EV, 0): 3}, {(EV, 1): 3}]
    assert r.writer.positions() == [(p, o) for p in (0, 1) for o in range(3)]


def test_a_partition_revoked_while_paused_fetches_when_assigned_again_after_the_outage() -> None:
    r = rig([*msgs(EV, 0, 3), *msgs(EV, 1, 3)], fail={"events": 1})
    r.consumer.events[3] = lambda c: c.revoke([(EV, 1)])  # the poll while paused
    r.consumer.events[4] = lambda c: c.assign([(EV, 1)])  # the next poll, the outage over
    r.polls(3, advance=0.25)  # read six; flush: fail, revoke, insert (ev,0)'s rows; read (ev,1) again
    assert r.consumer.resumes == [[(EV, 1)], [(EV, 0)]]
    assert r.consumer.delivered == [6, 0, 0, 3]
    r.polls(1)
    assert r.consumer.commits == [{(EV, 0): 3}, {(EV, 1): 3}]
    assert r.writer.positions() == [(p, o) for p in (0, 1) for o in range(3)]


def test_a_revocation_while_paused_does_not_insert_a_stored_table_twice() -> None:
    r = rig([*msgs(EV, 0, 2), *msgs(NT, 0, 2)], fail={"notes": 2})
    r.consumer.events[3] = lambda c: c.revoke([(EV, 0)])
    r.polls(2, advance=0.25)
    assert [(c.token, c.ok) for c in r.writer.calls] == [
        ("events:0:0-1", True),
        ("notes:0:0-1", False),
        ("notes:0:0-1", False),
        ("notes:0:0-1", True),
    ]
    # (ev,0)'s rows are stored but, revoked, not committed: its next owner skips them (stored offsets)
    assert r.consumer.commits == [{(NT, 0): 2}]


def test_a_message_read_before_its_partition_was_revoked_is_not_buffered_twice() -> None:
    r = rig(msgs(EV, 0, 3), lookup_failures=1)

    # revoked and given back while the stored offsets could not be read: all three come again
    def given_back(c: FakeConsumer) -> None:
        c.revoke([(EV, 0)])
        c.assign([(EV, 0)])

    r.consumer.events[2] = given_back
    r.polls(2, advance=0.25)
    assert r.writer.lookups == ["events", "events"]
    assert [(c.token, c.rows) for c in r.writer.calls] == [("events:0:0-2", 3)]
    assert r.consumer.commits == [{(EV, 0): 3}]
    assert r.consumer.pauses == r.consumer.resumes == [[(EV, 0)], [(EV, 0)]]  # resumed when revoked, paused anew


def test_stop_while_clickhouse_is_away_commits_nothing_and_leaves_the_group() -> None:
    stop = threading.Event()
    r = rig(msgs(EV, 0, 3), batch_rows=3, fail={"events": 1000})
    r.writer.on_fail = lambda n: stop.set() if n == 2 else None
    r.loader.run(stop)
    assert r.consumer.commits == []
    assert r.consumer.closed
    assert [c.ok for c in r.writer.calls] == [False, False, False]  # and the final flush's one attempt


def test_a_permanent_error_stops_the_loader_and_commits_nothing() -> None:
    r = rig(msgs(EV, 0, 3), batch_rows=3, permanent=True)
    with pytest.raises(SinkStoppedError, match="insert on table events failed permanently, the sink stopped"):
        r.loader.run(threading.Event())
    assert r.consumer.commits == []
    assert r.consumer.closed
    assert r.sample("upriver_sink_insert_failures_total", table="events") == 1


# ---- wiring ----------------------------------------------------------------------------------------


def test_build_sink_wires_the_edges_topic_to_the_edges_table() -> None:
    settings = Settings(sink_batch_rows=3, sink_batch_ms=200)
    topic, codec = settings.topics.edges, make_codec("edge")
    edges = [
        Edge(src=f"dataset:t{i}", dst="model:m", edge_type="TRAINED_ON", run_id=f"r{i}", job="j", event_id=f"e{i}",
             event_time=1_700_000_000_000, derived_at=1_700_000_001_000)
        for i in range(2)
    ]  # fmt: skip
    values = [codec.encode(e.to_record()) for e in edges]
    messages = [Msg(topic, 0, 0, values[0]), Msg(topic, 0, 1, b"not avro at all"), Msg(topic, 0, 2, values[1])]
    clock = Clock()
    consumer = FakeConsumer(messages, clock)
    stored: list[tuple[str, str, int]] = []

    class Writer:
        def insert(self, table: str, rows: Sequence[Sequence[Any]], *_: Any) -> None:
            stored.extend((table, row[0], row[-1]) for row in rows)

        def max_offsets(self, table: str) -> dict[int, int]:
            return {}

    registry = CollectorRegistry()
    loader = build_sink(settings, Writer(), consumer, clock=clock, sleep=clock.sleep, metrics=SinkMetrics(registry))
    assert sorted(consumer.topics) == sorted({settings.topics.edges, settings.topics.runs, settings.topics.dlq,
                                              settings.topics.alerts, settings.topics.health,
                                              settings.topics.drift_links, settings.topics.openlineage,
                                              settings.topics.tags})  # fmt: skip
    loader.poll_once()  # three messages, two rows: not full
    clock.now += 0.2
    loader.poll_once()
    assert stored == [("edges", "dataset:t0", 0), ("edges", "dataset:t1", 2)]
    assert consumer.commits == [{(topic, 0): 3}]
    assert registry.get_sample_value("upriver_sink_undecodable_messages_total", {"topic": topic}) == 1


def test_limits_out_of_range_are_refused() -> None:
    clock = Clock()
    consumer = FakeConsumer([], clock)
    with pytest.raises(ValueError, match="UPRIVER_SINK_BATCH_ROWS"):
        SinkLoader(consumer, TABLES, FakeWriter(consumer), 0, 200)
    with pytest.raises(ValueError, match="fed by topics"):
        SinkLoader(consumer, {**TABLES, "other": TableSpec(EVENTS, to_row)}, FakeWriter(consumer), 10, 200)


# ---- module limits of sinks/ -----------------------------------------------------------------------


def _sink_modules() -> list[Path]:
    return sorted((ROOT / "sinks").glob("*.py"))


def _direct_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_sink_modules_stay_small_documented_and_behind_their_adapters() -> None:
    too_long = [p.name for p in _sink_modules() if len(p.read_text().splitlines()) > 400]
    undocumented = [p.name for p in _sink_modules() if ast.get_docstring(ast.parse(p.read_text())) is None]
    long_functions = [
        f"{p.name}:{node.name}"
        for p in _sink_modules()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or 0) - min([node.lineno, *(d.lineno for d in node.decorator_list)]) + 1 > 60
    ]
    assert (too_long, undocumented, long_functions) == ([], [], [])
    kafka = [p.name for p in _sink_modules() if "confluent_kafka" in _direct_imports(p)]
    clickhouse = [p.name for p in _sink_modules() if "clickhouse_connect" in _direct_imports(p)]
    assert (kafka, clickhouse) == (["loader.py"], ["clickhouse.py"])


def test_the_batching_loads_neither_kafka_nor_clickhouse_clients() -> None:
    code = (
        "import json, sys\nimport sinks.batching, sinks.tables\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'confluent_kafka', 'clickhouse_connect'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
