"""The one module that wires the processor's pure decisions to Kafka with faust-streaming.

Keeps agent bodies to a few lines: what to do with each message is `processors.lineage.handling.EventHandler`
(decode/validate, dedup, merge the run and derive its edges, dead letters); this module feeds it batches,
gives it the publisher and the two state tables (dedup by event id, merged run state by run id), and
flushes the publisher before every offset commit. No decision logic here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import faust
from cramjam import lz4
from faust.sensors import Sensor
from prometheus_client import start_http_server

from processors import metrics
from processors.config import ProcessorConfig
from processors.lineage import dedup, runs
from processors.lineage.handling import Codecs, EventHandler, Output, Topics
from processors.worker.commits import CommitGuard
from processors.worker.publisher import Publisher
from schemas.codec import make_codec
from schemas.openlineage import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

EVICT_INTERVAL_S = 30.0
EVICT_LIMIT = 200_000
TAKE_MAX = 1_000
TAKE_WITHIN_S = 0.05
PASS_CHUNK = 20_000  # artifacts per slice of a health timer pass
PACK_CHUNK = 20_000  # keys per slice of the scan packing recovered state values (~2 ms)
# How the two state stores hold their values (ChangelogWriter): a dedup value is ~25 bytes of JSON (compression
# would add to it), a run state's ~1.3 KB (benchmarks/state_pack.py measures the forms)
DEDUP_PACK = "json"
RUN_STATE_PACK = "lz4"
METADATA_MAX_AGE_MS = 30_000
# faust creates the changelog topics; on a cluster whose default is ~1 MB a 4 MB event's run state would not fit
CHANGELOG_CONFIG = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


class FlushBeforeCommit(Sensor):
    """Flushes the output producer when faust is about to commit consumed offsets.

    faust computes the offsets to commit right after this call, with no await in between, so every
    event whose offset is committed has its edges and dead letters acknowledged by Kafka. A failed
    flush raises, the commit does not happen and the worker stops; its input is replayed on restart.
    Then `CommitGuard` gives faust back acknowledgements it forgot and holds back a partition it lost a
    message of (processors/worker/commits.py).
    """

    def __init__(self, publisher: Publisher, guard: CommitGuard) -> None:
        super().__init__()
        self._publisher = publisher
        self._guard = guard

    def on_commit_initiated(self, consumer: Any) -> Any:
        self._publisher.flush_or_raise()
        self._guard.before_commit(consumer)  # nothing is committed past a message faust lost


class ChangelogWriter:
    """Writes the dedup table: the local store plus its changelog record, on the key's own partition.

    Done here rather than by `table[key] = value` so that (1) the record goes through the publisher,
    which is flushed before every commit, and (2) batches may mix partitions (faust's own table write
    takes the partition from the "current event"). Keys and values are encoded exactly as faust's
    changelog topic encodes them (checked against faust's own encoder at start-up), so faust's
    recovery reads them back after a restart.

    `keep_values=False` keeps only the keys in the local store (the value `True`): for a table whose
    owner holds its state in its own form and reads the recovered store once, at start-up (the health
    table: processors/worker/health.py), so the state is not held twice in memory.

    `pack` keeps each value in the store as bytes, decoded on `get`: "json", its changelog record's own bytes
    (compact JSON); "lz4", those bytes compressed (an LZ4 block, ~2 us each way). A run's merged state as a
    dict of lists and strings takes ~3.3 KB of Python objects, as its JSON ~1.3 KB, compressed ~0.7 KB
    (docs/performance.md, "Worker memory"). faust's recovery fills the store with decoded values; `get`
    reads both forms and `pack_recovered` packs the recovered ones.
    """

    def __init__(self, table: Any, publisher: Output, keep_values: bool = True, pack: str = "") -> None:
        if pack not in ("", "json", "lz4"):
            raise ValueError(f"pack: '', 'json' or 'lz4', not {pack!r}")
        self.data = table.data  # faust's table store, which this writer keeps in last-update order
        self._publisher = publisher
        self._keep_values = keep_values
        self._packed = bool(pack)
        self._lz4 = pack == "lz4"
        topic = table.changelog_topic
        self._topic = topic.get_topic_name()

        def faust_key(key: str) -> bytes:
            return bytes(topic.prepare_key(key, table.key_serializer)[0])

        def faust_value(value: Any) -> bytes:
            return bytes(topic.prepare_value(value, table.value_serializer)[0])

        # faust's json codec is json.dumps with compact separators through its own encoder class (which only
        # differs on types our state never holds); that path costs ~6 % of the worker's CPU, so the same
        # bytes are made directly when the samples agree.
        self._key: Callable[[str], bytes] = faust_key
        if all(faust_key(k) == _json_bytes(k) for k in CHANGELOG_SAMPLE_KEYS):
            self._key = _json_bytes
        self._value: Callable[[Any], bytes] = faust_value
        if all(faust_value(v) == _json_bytes(v) for v in CHANGELOG_SAMPLE_VALUES):
            self._value = _json_bytes

    def get(self, key: str) -> Any:
        return self._decoded(self.data.get(key))

    def _decoded(self, stored: Any) -> Any:
        if not self._packed or not isinstance(stored, bytes):
            return stored
        return json.loads(bytes(lz4.decompress_block(stored)) if self._lz4 else stored)

    def _pack(self, encoded: bytes) -> bytes:
        return bytes(lz4.compress_block(encoded)) if self._lz4 else encoded

    def entries(self, limit: int) -> Iterator[tuple[str, Any]]:
        """The first `limit` entries in last-update order, values decoded one by one as the caller reads on."""
        return ((key, self._decoded(stored)) for key, stored in itertools.islice(self.data.items(), limit))

    def pack_recovered(self, chunk: int = PACK_CHUNK) -> Iterator[int]:
        """Packs the values faust's recovery stored decoded (keeps the order), `chunk` keys at a time: yields
        how many of each chunk it packed, so that the caller can let the event loop run in between (the
        store may change there: a key deleted meanwhile is skipped, one written meanwhile holds bytes)."""
        if not self._packed or not self._keep_values:
            return
        data = self.data
        keys = list(data)  # a C-speed copy (~2 ms at 235,000 keys); the values are read chunk by chunk
        for start in range(0, len(keys), chunk):
            packed = 0
            for key in keys[start : start + chunk]:
                stored = data.get(key)
                if stored is not None and not isinstance(stored, bytes):
                    data[key] = self._pack(self._value(stored))  # replacing a value keeps the key's place
                    packed += 1
            yield packed

    def set(self, partition: int, key: str, value: Any) -> None:
        if key in self.data:
            del self.data[key]  # keep the store in last-update order (eviction scans from the front)
        encoded = self._value(value)
        self.data[key] = (self._pack(encoded) if self._packed else value) if self._keep_values else True
        self._publisher.publish(self._topic, self._key(key), encoded, partition=partition)

    def delete(self, partition: int, key: str) -> None:
        del self.data[key]
        self._publisher.publish(self._topic, self._key(key), None, partition=partition)  # tombstone


CHANGELOG_SAMPLE_KEYS = ("3f1c2a9e-8b7d-4c21-9f0e-5a6b7c8d9e01", 'r:dataset:s3://lake/é\u2028 "x"')
CHANGELOG_SAMPLE_VALUES: tuple[Any, ...] = (
    [3, 1234567, 1767225600000],
    {"s": 'é\u2028\x00"/', "n": None, "t": True, "f": 1.5, "e": 1e300, "l": [1, "x", []], "d": {"k": -3}, "": {}},
)
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _json_bytes(obj: Any) -> bytes:
    return _compact_json(obj).encode()


def create_app(cfg: ProcessorConfig) -> faust.App:
    """Build the faust app for one deployment (no module-level singleton)."""
    app = _new_app(cfg)
    events_topic = _raw_topic(app, cfg.events_topic, cfg.partitions)
    # Output goes through librdkafka (processors/worker/publisher.py); faust only declares the topics.
    _raw_topic(app, cfg.edges_topic, cfg.partitions)
    _raw_topic(app, cfg.dlq_topic, cfg.partitions)
    _raw_topic(app, cfg.runs_topic, cfg.partitions)
    publisher = Publisher({"bootstrap.servers": cfg.bootstrap, **cfg.kafka_extra})
    # Dedup state: event_id -> [partition, offset, seen_at_ms]; co-partitioned with the events topic
    # (schemas/keys.py), backed by a compacted changelog so a restarted worker recovers it.
    seen_table = app.Table(
        "dedup", default=None, partitions=cfg.partitions, key_type=str, extra_topic_configs=CHANGELOG_CONFIG
    )
    # Merged run state: run_id -> processors.lineage.runs.RunState JSON (+ "u": last update ms, "p": partition).
    # Keyed like the events topic (the partition key is the run id), so a run's state lives with its events.
    run_table = app.Table(
        "runs", default=None, partitions=cfg.partitions, key_type=str, extra_topic_configs=CHANGELOG_CONFIG
    )
    event_codec = make_codec("lineage_event", cfg.registry_url, cfg.events_topic)
    edge_codec = make_codec("edge", cfg.registry_url, cfg.edges_topic)
    letter_codec = make_codec("dead_letter", cfg.registry_url, cfg.dlq_topic)
    run_codec = make_codec("run", cfg.registry_url, cfg.runs_topic)
    changelog = ChangelogWriter(seen_table, publisher, pack=DEDUP_PACK)
    run_changelog = ChangelogWriter(run_table, publisher, pack=RUN_STATE_PACK)
    topics = Topics(cfg.events_topic, cfg.edges_topic, cfg.runs_topic, cfg.dlq_topic, cfg.openlineage_topic)
    handler = EventHandler(
        topics,
        Codecs(event=event_codec, edge=edge_codec, run=run_codec, letter=letter_codec),
        publisher,
        changelog,
        run_changelog,
        placement=lambda: placement(app, cfg.events_topic),
    )
    app.sensors.add(FlushBeforeCommit(publisher, CommitGuard(handler.handled)))

    @app.agent(events_topic, name="lineage-events")
    async def process(stream: Any) -> None:
        # Batches amortise faust's per-event cost (benchmarks/faust_send.py: ~11.9k/s batched, ~3.9k/s
        # with one awaited faust send per event); faust acks a batch's events only after this body
        # has handled them all.
        async for batch in stream.take_events(TAKE_MAX, within=TAKE_WITHIN_S):
            with metrics.BATCH_SECONDS.time():
                handler.handle_batch([event.message for event in batch], now_ms())

    _wire_eviction(app, cfg.dedup_retention_s * 1000, changelog, run_changelog)

    if cfg.health_enabled:
        from processors.worker.health import wire_health  # it imports this module

        wire_health(app, cfg, publisher, run_codec)
    if cfg.openlineage_topic:
        _wire_openlineage(app, cfg, handler)
    if cfg.metrics_port:
        start_http_server(cfg.metrics_port, addr=cfg.metrics_host)
    return app


def placement(app: faust.App, events_topic: str) -> tuple[int, set[int]] | None:
    """The events topic's partition count and the partitions of it this worker owns (actively: their table
    partitions recovered), or None before the first assignment (`EventHandler`, `placement`: every event is then
    sent on, as when this worker owns none). faust's aiokafka driver reads the count from its coordinator's
    metadata snapshot; a driver without it sends everything on too."""
    try:
        count = app.consumer.topic_partitions(events_topic)
        actives = app.assignor.assigned_actives()
    except AttributeError:
        return None
    if not count:
        return None
    return count, {tp.partition for tp in actives if tp.topic == events_topic}


def _new_app(cfg: ProcessorConfig) -> faust.App:
    """The faust app: consumer group, changelog recovery, offset commits (its producer is not used)."""
    return faust.App(
        cfg.app_id,
        broker=[f"kafka://{b}" for b in cfg.bootstrap.split(",")],
        store="memory://",
        datadir=str(cfg.data_dir),
        web_enabled=False,
        topic_partitions=cfg.partitions,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=cfg.session_timeout_s,
        # A broker restart during the group join left the consumer with its topics "missing" and nothing
        # assigned until the next metadata refresh (5 minutes by default): refresh every 30 s instead
        # (the fault suite's broker-sigkill runs).
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )


def _wire_eviction(
    app: faust.App, retention_ms: int, changelog: ChangelogWriter, run_changelog: ChangelogWriter
) -> None:
    """The timer that bounds both tables: dedup entries and run states older than the retention go. Out of
    recovery it also packs the values faust's recovery (at start-up, or of a partition this worker took over)
    stored decoded (`ChangelogWriter`, `pack`): a scan of the values, ~25 ms at 235,000, in chunks of
    PACK_CHUNK keys with the event loop free in between."""

    @app.timer(interval=EVICT_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def evict_expired() -> None:
        recovery = getattr(app.tables, "recovery", None)
        if not app.in_recovery and recovery is not None and recovery.completed.is_set():
            for writer in (changelog, run_changelog):
                for _ in writer.pack_recovered():
                    await asyncio.sleep(0)  # a chunk at a time: the handlers run in between
        evict(changelog, run_changelog, now_ms(), retention_ms)


def evict(changelog: ChangelogWriter, run_changelog: ChangelogWriter, now: int, retention_ms: int) -> tuple[int, int]:
    """One eviction pass over both tables (at most EVICT_LIMIT of each); how many entries of each went."""
    seen_gone = dedup.expired(changelog.entries(EVICT_LIMIT + 1), now, retention_ms, EVICT_LIMIT)
    for key in seen_gone:
        changelog.delete(changelog.get(key)[0], key)
        metrics.DEDUP_EVICTED.inc()
    # Run states are kept in last-update order; a run silent for the retention is forgotten (a later
    # event of it starts a fresh, partial state: docs/operations.md, "lateness").
    runs_gone = runs.expired(run_changelog.entries(EVICT_LIMIT + 1), now, retention_ms, EVICT_LIMIT)
    for key in runs_gone:
        run_changelog.delete(run_changelog.get(key)["p"], key)
        metrics.RUNS_EVICTED.inc()
    return len(seen_gone), len(runs_gone)


def _wire_openlineage(app: faust.App, cfg: ProcessorConfig, handler: EventHandler) -> None:
    """OpenLineage JSON from `cfg.openlineage_topic`, handled where read or sent on to the events topic
    (processors/lineage/handling.py, `EventHandler.translate_openlineage`)."""
    ol_topic = _raw_topic(app, cfg.openlineage_topic, cfg.partitions)

    @app.agent(ol_topic, name="openlineage-kafka")
    async def openlineage_in(stream: Any) -> None:
        async for batch in stream.take_events(TAKE_MAX, within=TAKE_WITHIN_S):
            handler.translate_openlineage([event.message for event in batch], now_ms())


def run_worker(cfg: ProcessorConfig, loglevel: str = "WARNING") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT (faust handles both cleanly)."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(cfg)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
