"""The sink loader against the real broker and embedded ClickHouse: exactly-once storage, retries that
neither lose nor duplicate, no commit before the insert, and resume after a crash between insert and commit.

Each test uses its own topics, consumer group and database. Merges are stopped on the test tables so a
duplicate insert stays visible to count() instead of being collapsed by ReplacingMergeTree.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # the admin package does not re-export it for mypy
from prometheus_client import CollectorRegistry

from schemas.codec import make_codec
from schemas.model import DeadLetter, Edge
from sinks.loader import SinkLoader, build_sink
from sinks.metrics import SinkMetrics
from sinks.writer import ClickHouseWriter, RetryableSinkError, RowWriter
from upriver.settings import Settings, Topics

pytestmark = pytest.mark.integration

PARTITIONS = 3


@dataclass(frozen=True)
class Env:
    bootstrap: str
    edges: str
    dlq: str
    group: str
    database: str
    client: Client

    def settings(self, batch_rows: int, batch_ms: int = 200) -> Settings:
        return Settings(
            kafka_bootstrap=self.bootstrap,
            # the other topics get the edges topic's name + a suffix: unique per test, left empty here
            topics=Topics(
                edges=self.edges,
                runs=f"{self.edges}.runs",
                dlq=self.dlq,
                alerts=f"{self.edges}.alerts",
                health=f"{self.edges}.health",
                drift_links=f"{self.edges}.links",
                partitions=PARTITIONS,
            ),
            sink_group=self.group,
            sink_batch_rows=batch_rows,
            sink_batch_ms=batch_ms,
        )

    def count(self, table: str = "edges") -> int:
        return int(self.client.query(f"SELECT count() FROM `{self.database}`.{table}").result_rows[0][0])

    def distinct_positions(self) -> int:
        sql = f"SELECT uniqExact(kafka_partition, kafka_offset) FROM `{self.database}`.edges"
        return int(self.client.query(sql).result_rows[0][0])

    def end_offsets(self, topic: str) -> dict[int, int]:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
        try:
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)}
        finally:
            c.close()

    def committed(self, topic: str) -> dict[int, int]:
        """Committed offsets of the loader's group; partitions with none are left out."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group})
        try:
            tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
            return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
        finally:
            c.close()

    def fully_committed(self) -> bool:
        ends = {p: o for p, o in self.end_offsets(self.edges).items() if o > 0}
        return self.committed(self.edges) == ends


@pytest.fixture
def env(kafka_bootstrap: str, ch_client: Client, ch_database: str) -> Iterator[Env]:
    uid = uuid.uuid4().hex[:10]
    edges, dlq = f"sink-edges-{uid}", f"sink-dlq-{uid}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in (edges, f"{edges}.runs", dlq)]).values():
        future.result(timeout=30)
    for table in ("edges", "dead_letters"):
        ch_client.command(f"SYSTEM STOP MERGES `{ch_database}`.{table}")
    yield Env(kafka_bootstrap, edges, dlq, f"sink-{uid}", ch_database, ch_client)
    for future in admin.delete_topics([edges, dlq]).values():
        future.result(timeout=30)


def produce(bootstrap: str, topic: str, values: Sequence[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for key, value in values:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def edges(n: int) -> list[tuple[bytes, bytes]]:
    codec = make_codec("edge")
    out = []
    for i in range(n):
        edge = Edge(
            src=f"dataset:wh/t{i}",
            dst=f"model:ml/m{i % 10}",
            edge_type="TRAINED_ON",
            run_id=f"run-{i}",
            job="ml/train",
            event_id=f"ev-{i}",
            event_time=1_700_000_000_000 + i,
            derived_at=1_700_000_001_000 + i,
        )
        out.append((f"run-{i}".encode(), codec.encode(edge.to_record())))
    return out


def drain(loader: SinkLoader, done: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"loader did not finish within {timeout}s")
        loader.poll_once()


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_every_edge_stored_exactly_once(env: Env) -> None:
    produce(env.bootstrap, env.edges, [*edges(500), (b"bad", b"not avro at all")])
    dl_codec = make_codec("dead_letter")
    dead = DeadLetter("UNDECODABLE", "bad magic", "processor", "upriver.events.v1", 0, 7, b"\xff\x00", 1, None)
    produce(env.bootstrap, env.dlq, [(b"k", dl_codec.encode(dead.to_record()))])

    registry = CollectorRegistry()
    writer = ClickHouseWriter(env.client, env.database)
    loader = build_sink(env.settings(batch_rows=64), writer, metrics=SinkMetrics(registry))
    stop = threading.Event()
    thread = threading.Thread(target=loader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 90
        while not (env.count() == 500 and env.count("dead_letters") == 1 and env.fully_committed()):
            assert time.monotonic() < deadline, "loader did not store and commit everything in 90s"
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    assert env.count() == 500
    assert env.distinct_positions() == 500
    assert sample(registry, "upriver_sink_undecodable_messages_total", {"topic": env.edges}) == 1
    assert sample(registry, "upriver_sink_rows_inserted_total", {"table": "edges"}) == 500
    hex_payload = env.client.query(f"SELECT hex(payload), key FROM `{env.database}`.dead_letters").result_rows
    assert hex_payload == [("FF00", None)]


class FlakyWriter:
    """Fails the first `failures` inserts with RetryableSinkError, then delegates; records every call."""

    def __init__(self, inner: RowWriter, failures: int, env: Env) -> None:
        self.inner = inner
        self.failures = failures
        self.env = env
        self.calls: list[tuple[str, int, bool, dict[int, int]]] = []  # token, rows, ok, committed then

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        types: Sequence[str],
        dedup_token: str,
    ) -> None:
        committed = self.env.committed(self.env.edges)
        if self.failures > 0:
            self.failures -= 1
            self.calls.append((dedup_token, len(rows), False, committed))
            raise RetryableSinkError("simulated: ClickHouse is away")
        self.inner.insert(table, rows, columns, types, dedup_token)
        self.calls.append((dedup_token, len(rows), True, committed))

    def max_offsets(self, table: str) -> dict[int, int]:
        return self.inner.max_offsets(table)


def test_retries_same_batch_without_loss_or_early_commit(env: Env) -> None:
    produce(env.bootstrap, env.edges, edges(300))
    flaky = FlakyWriter(ClickHouseWriter(env.client, env.database), failures=4, env=env)
    sleeps: list[float] = []
    loader = build_sink(
        env.settings(batch_rows=1000, batch_ms=500),
        flaky,
        sleep=sleeps.append,
        metrics=SinkMetrics(CollectorRegistry()),
    )
    try:
        drain(loader, lambda: env.count() == 300 and env.fully_committed())
    finally:
        loader.close()

    assert env.count() == 300
    assert env.distinct_positions() == 300
    failed = [c for c in flaky.calls if not c[2]]
    first_ok = next(c for c in flaky.calls if c[2])
    assert len(failed) == 4
    assert re.fullmatch(r"edges:\d+:\d+-\d+(,\d+:\d+-\d+)*", first_ok[0]), first_ok[0]
    # The same batch, with the same token, every time until it went in.
    assert {(token, n) for token, n, _, _ in failed} == {(first_ok[0], first_ok[1])}
    # Nothing was committed while the batch was failing.
    assert all(committed == {} for _, _, _, committed in failed)
    assert sleeps == [0.1, 0.2, 0.4, 0.8]


class CrashAfterInsert:
    """Inserts, then raises as if the process died before committing offsets (first call only)."""

    def __init__(self, inner: RowWriter) -> None:
        self.inner = inner
        self.crashed_rows = 0

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        types: Sequence[str],
        dedup_token: str,
    ) -> None:
        self.inner.insert(table, rows, columns, types, dedup_token)
        if not self.crashed_rows:
            self.crashed_rows = len(rows)
            raise RuntimeError("simulated crash between insert and commit")

    def max_offsets(self, table: str) -> dict[int, int]:
        return self.inner.max_offsets(table)


def test_resume_after_crash_between_insert_and_commit(env: Env) -> None:
    produce(env.bootstrap, env.edges, edges(400))
    real = ClickHouseWriter(env.client, env.database)
    crashing = CrashAfterInsert(real)
    first = build_sink(env.settings(batch_rows=100), crashing, metrics=SinkMetrics(CollectorRegistry()))
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            drain(first, lambda: False)
    finally:
        first.close()
    stored_before = env.count()
    assert stored_before == crashing.crashed_rows > 0
    assert env.committed(env.edges) == {}

    registry = CollectorRegistry()
    second = build_sink(env.settings(batch_rows=100), real, metrics=SinkMetrics(registry))
    try:
        drain(second, lambda: env.count() >= 400 and env.fully_committed())
    finally:
        second.close()

    assert env.count() == 400
    assert env.distinct_positions() == 400
    skipped = sample(registry, "upriver_sink_skipped_already_stored_total", {"table": "edges"})
    assert skipped == stored_before
