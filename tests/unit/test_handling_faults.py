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
from ol_stream import ol_stream

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
    headers: Any = None


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
        self.kafka.queued.append(Record(topic, partition, key, value, headers))


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


def recover(kafka: Kafka, topic: str, partitions: set[int] | None = None) -> dict[str, Any]:
    """The table as faust's recovery rebuilds it: the last durable changelog value per key (of the table
    partitions given: those whose events-topic partitions the worker owns; None: all)."""
    out: dict[str, Any] = {}
    for r in kafka.durable:
        if r.topic == topic and (partitions is None or r.partition in partitions):
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


# ---- the OpenLineage topic: handled where read, or sent on to the events topic ----------------------------
#
# OpenLineage messages keyed by job (as the openlineage-python Kafka transport keys them), so a run's events do
# not land on its run id's partition. Each worker generation gets a random assignment of the partitions to one
# or two workers (a partition of the OpenLineage topic, of the events topic and of both tables go together, as
# faust assigns co-partitioned topics); a worker handles an OpenLineage event in place when it owns the run's
# events-topic partition and sends it on to the events topic otherwise, where the owner handles it. Crashes kill
# one worker mid-batch; the next generation re-assigns the partitions and recovers each worker's tables from
# the durable changelog records of the partitions it owns.

OL_TOPIC = "openlineage"
OL_TOPICS = Topics(events="events", edges="edges", runs="runs", dlq="dlq", openlineage=OL_TOPIC)
NOW = 1_767_225_600_000


def ol_workload(seed: int, runs: int) -> tuple[list[list[Msg]], set[tuple[str, str, str]], int]:
    """The stream's messages per partition of the OpenLineage topic, its spec edges and how many are malformed."""
    stream = ol_stream(seed, runs)
    parts: list[list[Msg]] = [[] for _ in range(PARTITIONS)]
    for key, value in stream.messages:
        p = zlib.crc32(key) % PARTITIONS
        parts[p].append(Msg(OL_TOPIC, p, len(parts[p]), key, value, NOW / 1000))
    return parts, stream.edges, stream.malformed


def _events_log(kafka: Kafka, partition: int) -> list[Msg]:
    """The events topic's durable messages of one partition (what the workers sent on), at their offsets."""
    mine = [r for r in kafka.durable if r.topic == OL_TOPICS.events and r.partition == partition]
    return [Msg(OL_TOPICS.events, partition, i, r.key, r.value, NOW / 1000, r.headers) for i, r in enumerate(mine)]


def ol_generation(
    kafka: Kafka,
    parts: list[list[Msg]],
    committed: dict[tuple[str, int], int],
    owner: list[int],
    crash_at: int | None,
    rng: random.Random,
    batches: int | None = None,
) -> bool:
    """Workers (partition p owned by worker owner[p]) from recovery to the end of both topics, the crash of
    worker owner[0] at its publish number `crash_at`, or a rebalance after `batches` batches; True if they
    finished. Every batch is flushed and committed before the next one (a survivor's work is committed at the
    rebalance that follows a crash)."""
    handlers: dict[int, tuple[EventHandler, set[int]]] = {}
    for w in set(owner):
        owned = {p for p in range(PARTITIONS) if owner[p] == w}
        output = FaultyOutput(kafka, crash_at if w == owner[0] else None)
        seen = Table(SEEN_LOG, output, recover(kafka, SEEN_LOG, owned))
        states = Table(RUNS_LOG, output, recover(kafka, RUNS_LOG, owned))
        placement = (PARTITIONS, frozenset(owned))
        handlers[w] = (EventHandler(OL_TOPICS, CODECS, output, seen, states, lambda p=placement: p), owned)  # type: ignore[misc]
    pos = dict(committed)
    try:
        while True:
            progressed = False
            for w in rng.sample(sorted(handlers), len(handlers)):
                handler, owned = handlers[w]
                batch: list[Msg] = []
                for p in owned:
                    for topic, log in ((OL_TOPIC, parts[p]), (OL_TOPICS.events, _events_log(kafka, p))):
                        at = pos.get((topic, p), 0)
                        chunk = log[at : at + rng.randint(1, BATCH)]
                        pos[(topic, p)] = at + len(chunk)
                        batch.extend(chunk)
                if not batch:
                    continue
                if batches is not None:
                    if batches == 0:
                        return False  # a rebalance: what was handed over and not handled is handed over again
                    batches -= 1
                progressed = True
                handler.translate_openlineage([m for m in batch if m.topic == OL_TOPIC], NOW)
                handler.handle_batch([m for m in batch if m.topic == OL_TOPICS.events], NOW)
                kafka.flush()  # FlushBeforeCommit, then the commit
                for m in batch:
                    committed[(m.topic, m.partition)] = max(committed.get((m.topic, m.partition), 0), m.offset + 1)
            if not progressed:
                return True
    except Crash:
        kafka.crash(rng)
        return False


def ol_run_with_crashes(
    parts: list[list[Msg]], crash_points: list[int], seed: int, split: bool, rebalances: int = 0
) -> Kafka:
    """`rebalances` generations that end after a few batches, then one that ends at each crash point, then one
    to the end."""
    kafka = Kafka()
    committed: dict[tuple[str, int], int] = {}
    rng = random.Random(seed)
    steps: list[tuple[int | None, int | None]] = [(None, rng.randint(1, 4)) for _ in range(rebalances)]
    for crash_at, batches in [*steps, *[(c, None) for c in crash_points], (None, None)]:
        owner = [rng.randint(0, 1) if split else 0 for _ in range(PARTITIONS)]
        if ol_generation(kafka, parts, committed, owner, crash_at, rng, batches) and batches is None:
            return kafka
    raise AssertionError("the last generation is never killed")


@pytest.fixture(scope="module")
def ol_reference() -> tuple[list[list[Msg]], set[tuple[str, str, str]], int, Any, Kafka]:
    """The workload, its spec edges, its malformed count, and one uncrashed worker's view and log."""
    parts, truth, malformed = ol_workload(seed=3, runs=14)
    kafka = ol_run_with_crashes(parts, [], seed=0, split=False)
    return parts, truth, malformed, final_view(kafka), kafka


def test_openlineage_events_handled_in_place_match_the_spec(ol_reference: Any) -> None:
    """One worker owns every partition: every OpenLineage event is handled where read, nothing goes through the
    events topic, and the readers see the spec's edges, every run COMPLETE and every malformed message."""
    _, truth, malformed, (run_records, edges, letters), kafka = ol_reference
    assert not [r for r in kafka.durable if r.topic == OL_TOPICS.events]
    assert {(s, d, rid) for s, d, _, _, rid, _ in edges if "#" not in s} == truth
    assert {r["status"] for r in run_records.values()} == {"COMPLETE"} and len(run_records) == 14
    assert len(letters) == malformed > 0


def test_openlineage_events_sent_on_or_handled_in_place_give_the_same_view(ol_reference: Any) -> None:
    """Partitions split between two workers, re-assigned at random: each event takes one way or the other, and
    the readers' view is the one-worker view."""
    parts, _, _, want, _ = ol_reference
    ways = set()
    for seed in range(12):
        kafka = ol_run_with_crashes(parts, [], seed=seed, split=True, rebalances=3)
        ways.add(any(r.topic == OL_TOPICS.events for r in kafka.durable))
        assert final_view(kafka) == want, (seed, _diff(want, final_view(kafka)))
    assert True in ways  # in some runs events did go through the events topic


def test_openlineage_a_crash_at_every_publish_loses_nothing(ol_reference: Any) -> None:
    """One SIGKILL at each publish of the first worker, in place (one worker) and with the partitions split
    and re-assigned after the crash: the readers' final view equals the uncrashed one."""
    parts, _, _, want, kafka = ol_reference
    total = len(kafka.durable)
    failures = []
    for crash_at in range(1, total + 1):
        for split in (False, True):
            got = final_view(ol_run_with_crashes(parts, [crash_at], seed=crash_at * 10 + split, split=split))
            if got != want:
                failures.append((crash_at, split, _diff(want, got)))
    assert not failures, failures[:3]


def test_openlineage_repeated_crashes_and_reassignments_lose_nothing(ol_reference: Any) -> None:
    parts, _, _, want, kafka = ol_reference
    total = len(kafka.durable)
    rng = random.Random(7)
    for trial in range(60):
        crashes = [rng.randint(1, max(2, total // 3)) for _ in range(rng.randint(2, 6))]
        got = final_view(ol_run_with_crashes(parts, crashes, seed=2000 + trial, split=True, rebalances=trial % 3))
        assert got == want, (trial, crashes, _diff(want, got))
