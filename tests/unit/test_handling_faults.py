"""Kill the event handler at every step of handling and check that nothing it acknowledged is lost.

A fault-injecting output stands in for Kafka with librdkafka's durability rules: what was flushed is
durable; of what was queued after the last flush, each (topic, partition) keeps some prefix (per-partition
order holds, nothing more is promised). Offsets are committed only after a flush, as FlushBeforeCommit does
in the worker. After a crash the state tables are rebuilt from the durable changelog records (faust's
recovery) and the input is re-read from the committed offsets. The answer is counted against the
simulator's truth: every run's record at its final revision and every edge of it must be durable, and
every malformed message dead-lettered.
"""

from __future__ import annotations

import json
import random
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from processors.lineage import handling
from processors.lineage.handling import Codecs, EventHandler, Topics
from producers.simulator import Simulator
from schemas.codec import make_codec

PARTITIONS = 3
BATCH = 7
TOPICS = Topics(events="events", edges="edges", runs="runs", dlq="dlq")
CODECS = Codecs(
    event=make_codec("lineage_event"), edge=make_codec("edge"), run=make_codec("run"), letter=make_codec("dead_letter")
)
SEEN_LOG, RUNS_LOG = "dedup-changelog", "runs-changelog"


class Crash(BaseException):
    """The process dies here (a BaseException: the handler's per-message catch must not swallow it)."""


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    headers: Any = None


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None


@dataclass
class Kafka:
    """The durable log of every output topic, and the queue of what is published but not yet flushed."""

    durable: list[Record] = field(default_factory=list)
    queued: list[Record] = field(default_factory=list)

    def flush(self) -> None:
        self.durable.extend(self.queued)
        self.queued.clear()

    def crash(self, rng: random.Random) -> None:
        """What a SIGKILL leaves: per (topic, partition), a random prefix of the unflushed records."""
        by_tp: dict[tuple[str, int], list[Record]] = defaultdict(list)
        for r in self.queued:
            by_tp[(r.topic, r.partition)].append(r)
        keep = {tp: rng.randint(0, len(rs)) for tp, rs in by_tp.items()}
        seen: dict[tuple[str, int], int] = defaultdict(int)
        for r in self.queued:
            tp = (r.topic, r.partition)
            if seen[tp] < keep[tp]:
                self.durable.append(r)
            seen[tp] += 1
        self.queued.clear()


class FaultyOutput:
    """The publisher: queues into `kafka` and raises Crash at publish number `crash_at` (None: never)."""

    def __init__(self, kafka: Kafka, crash_at: int | None) -> None:
        self.kafka = kafka
        self.crash_at = crash_at
        self.published = 0

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: handling.Headers | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.published += 1
        if self.crash_at is not None and self.published == self.crash_at:
            raise Crash
        if partition is None:
            partition = zlib.crc32(key or b"") % PARTITIONS
        self.kafka.queued.append(Record(topic, partition, key, value))


class Table:
    """A state table written through the output as changelog records (the worker's ChangelogWriter)."""

    def __init__(self, topic: str, output: FaultyOutput, recovered: dict[str, Any]) -> None:
        self.topic, self.output, self.data = topic, output, recovered

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, partition: int, key: str, value: Any) -> None:
        self.data[key] = value
        self.output.publish(self.topic, key.encode(), json.dumps(value).encode(), partition=partition)

    def delete(self, partition: int, key: str) -> None:
        del self.data[key]
        self.output.publish(self.topic, key.encode(), None, partition=partition)


def recover(kafka: Kafka, topic: str) -> dict[str, Any]:
    """The table as faust's recovery rebuilds it: the last durable changelog value per key."""
    out: dict[str, Any] = {}
    for r in kafka.durable:
        if r.topic == topic:
            key = (r.key or b"").decode()
            if r.value is None:
                out.pop(key, None)
            else:
                out[key] = json.loads(r.value)
    return out


def workload(seed: int, events: int) -> tuple[Simulator, list[list[Msg]]]:
    sim = Simulator(CODECS.event, seed=seed, duplicate_rate=0.08, malformed_rate=0.04)
    parts: list[list[Msg]] = [[] for _ in range(PARTITIONS)]
    for m in sim.messages(events):
        value = CODECS.event.encode(m.event.to_record()) if m.event else m.payload
        p = zlib.crc32(m.key) % PARTITIONS
        parts[p].append(Msg(TOPICS.events, p, len(parts[p]), m.key, value, 1_767_225_600.0))
    return sim, parts


def batches(parts: list[list[Msg]], committed: list[int], rng: random.Random) -> Iterator[list[Msg]]:
    """From the committed offsets on: batches that mix partitions, as faust's take_events hands them over.
    Like faust, now and then it hands over the previous batch again, and it drops a fetched message (one of
    a partition it considered inactive) and later seeks that partition back to its committed offset."""
    pos = list(committed)
    previous: list[Msg] = []
    dropped: set[int] = set()  # partitions with a dropped message not handed over again yet
    while any(pos[p] < len(parts[p]) for p in range(PARTITIONS)) or dropped:
        if previous and rng.random() < 0.1:
            yield previous
        for p in list(dropped):
            if rng.random() < 0.3 or all(pos[q] >= len(parts[q]) for q in range(PARTITIONS)):
                pos[p] = committed[p]  # the seek back
                dropped.discard(p)
        batch: list[Msg] = []
        for p in rng.sample(range(PARTITIONS), PARTITIONS):
            chunk = parts[p][pos[p] : pos[p] + rng.randint(0, BATCH)]
            pos[p] += len(chunk)
            if len(chunk) > 2 and rng.random() < 0.05:
                del chunk[rng.randrange(len(chunk) - 1)]
                dropped.add(p)
            batch.extend(chunk)
        previous = batch
        yield batch


def run_worker(
    kafka: Kafka, parts: list[list[Msg]], committed: list[int], crash_at: int | None, rng: random.Random
) -> bool:
    """One worker process from recovery to the end of the input or its crash; True if it finished. Commits
    as faust does: per partition, up to the first offset not acknowledged (handed over and handled)."""
    output = FaultyOutput(kafka, crash_at)
    handler = EventHandler(
        TOPICS,
        CODECS,
        output,
        Table(SEEN_LOG, output, recover(kafka, SEEN_LOG)),
        Table(RUNS_LOG, output, recover(kafka, RUNS_LOG)),
    )
    acked: list[set[int]] = [set() for _ in range(PARTITIONS)]
    try:
        for batch in batches(parts, committed, rng):
            handler.handle_batch(batch, 1_767_225_600_000)
            kafka.flush()  # FlushBeforeCommit, then the commit
            for m in batch:
                acked[m.partition].add(m.offset)
            for p in range(PARTITIONS):
                while committed[p] in acked[p]:
                    committed[p] += 1
    except Crash:
        kafka.crash(rng)
        return False
    kafka.flush()
    return True


def final_view(kafka: Kafka) -> tuple[dict[str, dict[str, Any]], set[tuple[Any, ...]], set[tuple[str, int, int]]]:
    """What the readers see: per run its highest revision's record and edges, and the dead letters."""
    run_records: dict[str, dict[str, Any]] = {}
    edges_by_rev: dict[tuple[str, int], set[tuple[Any, ...]]] = defaultdict(set)
    letters: set[tuple[str, int, int]] = set()
    for r in kafka.durable:
        if r.topic == TOPICS.runs:
            rec = CODECS.run.decode(r.value or b"")
            old = run_records.get(rec["run_id"])
            if old is None or rec["revision"] > old["revision"]:
                run_records[rec["run_id"]] = rec
        elif r.topic == TOPICS.edges:
            e = CODECS.edge.decode(r.value or b"")
            edges_by_rev[(e["run_id"], e["revision"])].add(
                (e["src"], e["dst"], e["edge_type"], e["subtype"], e["run_id"], e["run_status"])
            )
        elif r.topic == TOPICS.dlq:
            d = CODECS.letter.decode(r.value or b"")
            letters.add((d["source_topic"], d["source_partition"], d["source_offset"]))
    edges = {e for rid, rec in run_records.items() for e in edges_by_rev.get((rid, rec["revision"]), ())}
    return {rid: {**rec, "updated_at": 0} for rid, rec in run_records.items()}, edges, letters


def run_with_crashes(parts: list[list[Msg]], crash_points: list[int], seed: int) -> Kafka:
    kafka = Kafka()
    committed = [0] * PARTITIONS
    rng = random.Random(seed)
    for crash_at in [*crash_points, None]:
        if run_worker(kafka, parts, committed, crash_at, rng):
            return kafka
    raise AssertionError("the last worker is never killed")


@pytest.fixture(scope="module")
def reference() -> tuple[Simulator, list[list[Msg]], Any, int]:
    sim, parts = workload(seed=5, events=90)
    kafka = run_with_crashes(parts, [], seed=0)
    view = final_view(kafka)
    total = sum(1 for _ in kafka.durable)
    return sim, parts, view, total


def test_the_uncrashed_run_matches_the_simulators_truth(reference: tuple[Simulator, list[list[Msg]], Any, int]) -> None:
    sim, _, (run_records, edges, letters), _ = reference
    truth = sim.truth  # it records a run once all its events are out: the last run may be cut off
    done = set(truth.runs)
    assert {(s, d, t, rid) for s, d, t, _, rid, _ in edges if "#" not in s and rid in done} == truth.edge_rows
    assert {rid: r["status"] for rid, r in run_records.items() if rid in done} == {
        rid: r.status for rid, r in truth.runs.items()
    }
    assert len(run_records) - len(done) <= 1
    assert len(letters) == truth.malformed > 0


def test_a_crash_at_every_publish_loses_nothing(reference: tuple[Simulator, list[list[Msg]], Any, int]) -> None:
    """One SIGKILL at each publish of the handling (run record, each edge, dead letter, each changelog
    record), two different random surviving prefixes each: the readers' final view equals the uncrashed one."""
    _, parts, want, total = reference
    failures = []
    for crash_at in range(1, total + 1):
        for variant in range(2):
            got = final_view(run_with_crashes(parts, [crash_at], seed=crash_at * 10 + variant))
            if got != want:
                failures.append((crash_at, variant, _diff(want, got)))
    assert not failures, failures[:3]


def test_repeated_crashes_lose_nothing(reference: tuple[Simulator, list[list[Msg]], Any, int]) -> None:
    """Several SIGKILLs in one workload (each restarted worker killed again soon after recovery)."""
    _, parts, want, total = reference
    rng = random.Random(99)
    for trial in range(60):
        crashes = [rng.randint(1, max(2, total // 4)) for _ in range(rng.randint(2, 6))]
        got = final_view(run_with_crashes(parts, crashes, seed=1000 + trial))
        assert got == want, (trial, crashes, _diff(want, got))


def _diff(want: Any, got: Any) -> dict[str, Any]:
    (wr, we, wl), (gr, ge, gl) = want, got
    return {
        "runs_missing_or_stale": sorted(k for k in wr if gr.get(k) != wr[k])[:3],
        "edges_missing": sorted(we - ge)[:3],
        "edges_extra": sorted(ge - we)[:3],
        "letters_missing": sorted(wl - gl)[:3],
    }


def _one_run(sim_seed: int = 11) -> list[Msg]:
    """The messages of the first run with edges in a clean workload, on one partition, in order."""
    sim = Simulator(CODECS.event, seed=sim_seed, duplicate_rate=0, malformed_rate=0)
    events = [m.event for m in sim.messages(60) if m.event]
    run_id = next(e.run_id for e in events if e.inputs and e.outputs)
    mine = [e for e in events if e.run_id == run_id]
    encode = CODECS.event.encode
    return [Msg(TOPICS.events, 0, i, b"k", encode(e.to_record()), 1_767_225_600.0) for i, e in enumerate(mine)]


def _handler(kafka: Kafka, recovered: bool = False) -> tuple[EventHandler, FaultyOutput]:
    output = FaultyOutput(kafka, None)
    seen = recover(kafka, SEEN_LOG) if recovered else {}
    states = recover(kafka, RUNS_LOG) if recovered else {}
    handler = EventHandler(TOPICS, CODECS, output, Table(SEEN_LOG, output, seen), Table(RUNS_LOG, output, states))
    return handler, output


def _outputs(records: list[Record]) -> list[tuple[str, bytes | None]]:
    return [(r.topic, r.value) for r in records if r.topic in (TOPICS.runs, TOPICS.edges)]


def test_the_same_message_handed_over_twice_publishes_nothing_more() -> None:
    kafka = Kafka()
    handler, output = _handler(kafka)
    msgs = _one_run()
    handler.handle_batch(msgs, 1_767_225_600_000)
    published = output.published
    assert published > 0
    handler.handle_batch(msgs, 1_767_225_600_000)  # faust hands the batch over again
    assert output.published == published


def test_a_re_sent_event_at_a_new_offset_is_dropped_with_no_output() -> None:
    kafka = Kafka()
    handler, output = _handler(kafka)
    msgs = _one_run()
    handler.handle_batch(msgs, 1_767_225_600_000)
    published = output.published
    resent = [Msg(m.topic, m.partition, m.offset + len(msgs), m.key, m.value, m.timestamp) for m in msgs]
    handler.handle_batch(resent, 1_767_225_600_000)  # a retrying emitter sent the same events again
    assert output.published == published


def test_a_replay_after_a_crash_re_publishes_the_same_outputs() -> None:
    """A worker killed after its outputs were durable but before its commit: its successor recovers the
    tables, reads the same offsets again (REPLAY) and re-publishes the final run record and edges it had
    published, byte for byte and nothing else, so the readers' one-row-per-revision view is unchanged."""
    msgs = _one_run()
    kafka = Kafka()
    first, _ = _handler(kafka)
    first.handle_batch(msgs, 1_767_225_600_000)
    kafka.flush()
    before = _outputs(kafka.durable)
    mark = len(kafka.durable)
    second, _ = _handler(kafka, recovered=True)
    second.handle_batch(msgs, 1_767_225_600_000)
    kafka.flush()
    again = _outputs(kafka.durable[mark:])
    final_run = [v for t, v in before if t == TOPICS.runs][-1]
    assert [v for t, v in again if t == TOPICS.runs][-1] == final_run
    replayed_edges = {v for t, v in again if t == TOPICS.edges}
    assert replayed_edges and replayed_edges <= {v for t, v in before if t == TOPICS.edges}
    assert final_view(kafka) == final_view(_replayed_once(msgs))


def _replayed_once(msgs: list[Msg]) -> Kafka:
    kafka = Kafka()
    handler, _ = _handler(kafka)
    handler.handle_batch(msgs, 1_767_225_600_000)
    kafka.flush()
    return kafka
