"""Fault runs against real processes: a workload streams while worker, sink or broker are killed, then the
store is counted against the simulator's truth.

Topology: the worker (`upriver worker`) and the sink (`upriver sink`: sink + read API, its own chDB path)
are child processes, so either can be SIGKILLed; the broker is the session's, or for broker faults one
of the run's own. After the workload, the harness waits until both consumer groups have committed
everything (lag 0: the commit-stall defect shows as a timeout here), stops the sink and counts the store
in a fresh process (chDB: one engine per process).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Producer
from ol_stream import OpenLineageStream, ol_stream

from producers.emitter import LineageEmitter
from producers.simulator import Simulator
from schemas.codec import make_codec
from upriver.deploy.kafka import AdminClient, Consumer, assigned_members, ensure_topics, measure_offsets
from upriver.local.stack import free_port
from upriver.settings import Settings, Topics

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
CODEC = make_codec("lineage_event")


@dataclass
class RunResult:
    scenario: str
    seed: int
    events: int  # unique events the simulator sent (all acknowledged by Kafka, or the run fails)
    messages: int  # messages sent: events, duplicates, malformed
    malformed: int
    faults: list[str] = field(default_factory=list)  # what was done, in order, with the second it happened
    lost_edges: int = 0  # truth edge rows not stored
    unexpected_edges: int = 0  # stored edge rows the truth does not have
    runs_missing: int = 0  # truth runs with no stored run row
    dead_letters_missing: int = 0
    duplicate_rows_before_collapse: int = 0  # rows beyond one per (edge, run revision), before FINAL
    duplicate_rows_after_collapse: int = 0  # what the readers see (FINAL)
    drain_s: float = 0.0  # last fault -> both groups caught up
    stalled: str = ""  # a group that stopped making progress with lag left

    @property
    def ok(self) -> bool:
        return not (
            self.lost_edges
            or self.unexpected_edges
            or self.runs_missing
            or self.dead_letters_missing
            or self.duplicate_rows_after_collapse
            or self.stalled
        )

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def fault_settings(bootstrap: str, home: Path, name: str) -> Settings:
    uid = uuid.uuid4().hex[:10]
    base = Settings.from_env({})
    return replace(
        base,
        home=home,
        kafka_bootstrap=bootstrap,
        clickhouse_url=f"chdb://{home / 'chdb'}",
        clickhouse_database=f"{name}_{uid}",
        topics=Topics.unique(uid, partitions=4),
        processor_id=f"proc-{uid}",
        sink_group=f"sink-{uid}",
        sink_batch_ms=100,
        metrics_port=free_port(),
        api_port=free_port(),
    )


class Pipeline:
    """The worker and the sink as child processes of one settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logs = settings.home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.worker: subprocess.Popen[bytes] | None = None
        self.sink: subprocess.Popen[bytes] | None = None
        self.restarts = []
        ensure_topics({**settings.kafka_config(), "log_level": 3}, settings.topics)

    def _spawn(self, what: str, log: str = "", env_extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.settings.to_env(), "PYTHONPATH": str(ROOT), **(env_extra or {})}
        out = (self.logs / f"{log or what}.log").open("ab")
        args = [sys.executable, "-m", "upriver", what] + (["--log-level", "WARNING"] if what == "worker" else [])
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        out.close()
        return proc

    def start_worker(self) -> None:
        self.worker = self._spawn("worker")

    def start_sink(self) -> None:
        self.sink = self._spawn("sink")

    @staticmethod
    def _end(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill_worker(self) -> None:
        self._end(self.worker, signal.SIGKILL)

    def kill_sink(self) -> None:
        self._end(self.sink, signal.SIGKILL)

    def stop_worker(self) -> None:
        self._end(self.worker, signal.SIGTERM)

    def stop_sink(self) -> None:
        self._end(self.sink, signal.SIGTERM)

    def stop(self) -> None:
        self.stop_worker()
        self.stop_sink()

    restart_on_exit = False  # broker faults: a worker that stopped (output not acknowledged) is restarted
    restarts: list[str]

    def check_alive(self) -> None:
        for what, proc in (("worker", self.worker), ("sink", self.sink)):
            if proc is not None and proc.poll() is not None and self.restart_on_exit:
                self.restarts.append(f"{what} exited with {proc.returncode}, restarted")
                (self.start_worker if what == "worker" else self.start_sink)()
            elif proc is not None and proc.poll() is not None:
                tail = (self.logs / f"{what}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{what} exited with {proc.returncode} on its own:\n{tail}")

    def processor_topics(self) -> list[str]:
        """What the worker's group reads: events, OpenLineage JSON and (the health agent) run records."""
        t = self.settings.topics
        return [t.events, t.openlineage, t.runs]

    def lag(self, admin: AdminClient, readers: dict[str, Consumer]) -> dict[str, int]:
        """Messages not yet committed per group, over every partition (one never committed counts from the
        log start: a worker that never commits must not look caught up). The committed offsets are read
        through a non-joining Consumer per group (`readers`), as the lag monitor does: the admin API's
        ListConsumerGroupOffsets segfaults on a coordinator still loading (librdkafka#5040), which took
        this test process down in CI."""
        t = self.settings.topics
        groups = {"processor": (self.settings.processor_id, self.processor_topics()),
                  "sink": (self.settings.sink_group, [t.edges, t.runs, t.dlq])}  # fmt: skip
        out: dict[str, int] = {}
        for name, (group, topics) in groups.items():
            if group not in readers:
                config = {**self.settings.kafka_config(), "log_level": 3}
                readers[group] = Consumer({**config, "group.id": group, "enable.auto.commit": False})
            measured = measure_offsets(admin, group, topics, consumer=readers[group])
            out[name] = sum(o.lag for o in measured.values())
        return out

    def wait_drained(self, stall_s: float = 90.0, limit_s: float = 300.0) -> tuple[float, str]:
        """Seconds until both groups have committed everything; or the group that made no progress for
        `stall_s` with lag left (the commit stall), or that did not finish in `limit_s`."""
        admin = AdminClient({**self.settings.kafka_config(), "log_level": 3})
        readers: dict[str, Consumer] = {}
        try:
            return self._wait_drained(admin, readers, stall_s, limit_s)
        finally:
            for reader in readers.values():
                reader.close()

    def _wait_drained(
        self, admin: AdminClient, readers: dict[str, Consumer], stall_s: float, limit_s: float
    ) -> tuple[float, str]:
        started = time.monotonic()
        last: dict[str, tuple[int, float]] = {}
        while True:
            self.check_alive()
            now = time.monotonic()
            try:
                lag = self.lag(admin, readers)
            except Exception as exc:  # the broker may be restarting
                log.info("lag not measured: %s", exc)
                time.sleep(1)
                continue
            if lag["processor"] == 0 and lag["sink"] == 0:
                return now - started, ""
            for group in ("processor", "sink"):
                value = lag[group]
                if group not in last or value < last[group][0]:
                    last[group] = (value, now)
                elif value > 0 and now - last[group][1] > stall_s:
                    return now - started, f"{group}: lag {value} unchanged for {stall_s:.0f}s"
            if now - started > limit_s:
                return now - started, f"not drained in {limit_s:.0f}s: {lag}"
            time.sleep(0.5)

    def count(self) -> dict[str, Any]:
        """The store, counted in a fresh process after the sink stopped (it owns the chDB path)."""
        script = (
            "import json, sys\n"
            f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
            "from faults.harness import count_store\n"
            "from sinks.clickhouse import connect\n"
            f"print(json.dumps(count_store(connect({self.settings.clickhouse_url!r}), "
            f"{self.settings.clickhouse_database!r})))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT, timeout=300
        )
        counted: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return counted


class TwoWorkerPipeline(Pipeline):
    """Two worker processes in one consumer group, the partitions split between them; a worker fault kills one
    of them (in turn), and restarting starts whichever is not running. `settle`: starting waits until both hold
    partitions, so that no rebalance falls inside the workload (a rebalance while partitions have never been
    committed can leave them uncommitted: docs/operations.md, the known defect)."""

    def __init__(self, settings: Settings, settle: bool = False) -> None:
        super().__init__(settings)
        self._settle = settle
        self.workers: list[subprocess.Popen[bytes] | None] = [None, None]
        self._ports = [settings.metrics_port, free_port()]
        self._turn = 0

    def start_worker(self) -> None:
        for i, proc in enumerate(self.workers):
            if proc is None or proc.poll() is not None:
                # each its own state dir and metrics port; health off (its agent needs every runs partition in
                # one worker: docs/operations.md)
                home = self.settings.home / f"worker-{i}"
                extra = {"UPRIVER_METRICS_PORT": str(self._ports[i]), "UPRIVER_HOME": str(home),
                         "UPRIVER_HEALTH_ENABLED": "0"}  # fmt: skip
                self.workers[i] = self._spawn("worker", f"worker-{i}", extra)
        self.worker = self.workers[0]
        if self._settle:
            self._wait_two_members()

    def _wait_two_members(self, timeout: float = 180.0) -> None:
        admin = AdminClient({**self.settings.kafka_config(), "log_level": 3})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if assigned_members(admin, self.settings.processor_id) == 2:
                    return
            except Exception:  # the group does not exist yet
                pass
            time.sleep(0.5)
        raise AssertionError(f"the two workers did not both hold partitions within {timeout:.0f} s")

    def processor_topics(self) -> list[str]:
        return [self.settings.topics.events, self.settings.topics.openlineage]  # health off: no run records read

    def kill_worker(self) -> None:
        self._end(self.workers[self._turn], signal.SIGKILL)
        self._turn = 1 - self._turn

    def stop_worker(self) -> None:
        for proc in self.workers:
            self._end(proc, signal.SIGTERM)

    def check_alive(self) -> None:
        for i, proc in enumerate(self.workers):
            if proc is not None and proc.poll() is not None:
                tail = (self.logs / f"worker-{i}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"worker {i} exited with {proc.returncode} on its own:\n{tail}")
        super().check_alive()


def count_store(client: Any, db: str) -> dict[str, Any]:
    """What the store holds, for `compare`: distinct edge rows, run ids, dead letters, duplicate rows."""

    def q(sql: str) -> list[Any]:
        return list(client.query(sql).result_rows)

    edges = q(f"SELECT src, dst, edge_type, run_id FROM {db}.edges WHERE position(src, '#') = 0 GROUP BY ALL")
    return {
        "edges": [list(r) for r in edges],
        "runs": [r[0] for r in q(f"SELECT DISTINCT run_id FROM {db}.runs")],
        "letters": q(f"SELECT uniqExact(source_topic, source_partition, source_offset) FROM {db}.dead_letters")[0][0],
        "dup_before": q(f"SELECT count() - uniqExact(src, dst, edge_type, run_id, revision) FROM {db}.edges")[0][0],
        "dup_after": q(f"SELECT count() - uniqExact(src, dst, edge_type, run_id) FROM {db}.edges FINAL")[0][0],
    }


class StackPipeline(Pipeline):
    """A LocalStack as the pipeline: the sink is a thread of this process (so a test can reach its ClickHouse
    and make it refuse inserts or lose a table), the worker its child."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.settings = stack.settings
        self.worker = None
        self.sink = None
        self.restarts = []
        self.expected_failures: set[str] = set()

    def start_worker(self) -> None:
        if self.stack.worker is None:
            self.stack.start_worker()

    def start_sink(self) -> None:
        if self.stack._sink_thread is None or not self.stack._sink_thread.is_alive():
            self.stack.start_sink()

    def kill_worker(self) -> None:
        self.stack.stop_worker(kill=True)

    def stop_worker(self) -> None:
        self.stack.stop_worker()

    def stop_sink(self) -> None:
        pass  # counted in this process while it runs

    def kill_sink(self) -> None:
        raise NotImplementedError("the sink is a thread of this process: use Pipeline for sink kills")

    def stop(self) -> None:
        pass  # the stack's owner stops it

    def check_alive(self) -> None:
        failed = [f for f in self.stack.failures() if f.stage not in self.expected_failures]
        if failed:
            raise AssertionError(f"stage(s) stopped on their own: {[f.to_json() for f in failed]}")

    def count(self) -> dict[str, Any]:
        return count_store(self.stack.storage.read_client, self.stack.storage.database)


class _Paced:
    """A workload streamed at a pace from a thread (`_send`); every message must be acknowledged by Kafka. Says
    what it sent (`events`, `malformed`, `messages`) and counts the store against its own truth (`compare`)."""

    def __init__(self, settings: Settings, rate: float, count: int) -> None:
        self.settings, self.rate = settings, rate
        self.duration = count / rate  # seconds the stream takes, at the pace
        self.messages = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def _send(self) -> None:
        raise NotImplementedError

    def _pace(self, i: int, started: float) -> None:
        self.messages += 1
        if i % 50 == 0:
            time.sleep(max(0.0, i / self.rate - (time.monotonic() - started)))

    def _run(self) -> None:
        try:
            self._send()
        except BaseException as exc:  # reported by join()
            self.error = exc

    @property
    def events(self) -> int:
        """Valid events sent (duplicates and malformed messages aside)."""
        raise NotImplementedError

    @property
    def malformed(self) -> int:
        raise NotImplementedError

    def compare(self, result: RunResult, counted: dict[str, Any]) -> RunResult:
        raise NotImplementedError

    def start(self) -> _Paced:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join(600)
        if self.error is not None:
            raise AssertionError(f"the workload was not acknowledged by Kafka: {self.error}") from self.error


class Workload(_Paced):
    """Simulated events (3 % duplicates, 1 % malformed) through the emitter to the events topic."""

    def __init__(self, settings: Settings, seed: int, events: int, rate: float) -> None:
        super().__init__(settings, rate, events)
        self.sim = Simulator(CODEC, seed=seed, duplicate_rate=0.03, malformed_rate=0.01)
        self._count = events

    @property
    def events(self) -> int:
        return self.sim.truth.events

    @property
    def malformed(self) -> int:
        return self.sim.truth.malformed

    def _send(self) -> None:
        # librdkafka keeps retrying through a broker restart (message.timeout.ms: 5 minutes)
        with LineageEmitter(self.settings.kafka_config(), self.settings.topics.events, codec=CODEC) as em:
            started = time.monotonic()
            for i, m in enumerate(self.sim.messages(self._count)):
                if m.event is not None:
                    em.emit(m.event)
                else:
                    em.send_encoded(m.payload or b"", m.key)
                self._pace(i, started)
            em.flush(timeout=300)

    def compare(self, result: RunResult, counted: dict[str, Any]) -> RunResult:
        truth = self.sim.truth
        stored = {tuple(r) for r in counted["edges"]}
        result.lost_edges = len(truth.edge_rows - stored)
        result.unexpected_edges = len(stored - truth.edge_rows)
        runs = {rid for rid in truth.runs if not rid.startswith("signal-")}  # drift/quality signals are no runs
        result.runs_missing = len(runs - set(counted["runs"]))
        result.dead_letters_missing = truth.malformed - int(counted["letters"])
        return result


class OpenLineageWorkload(_Paced):
    """OpenLineage JSON (tests/ol_stream.py) to the OpenLineage topic, keyed by job as the openlineage-python Kafka
    transport keys it; counted against the spec's edges of the stream."""

    def __init__(self, settings: Settings, seed: int, runs: int, rate: float) -> None:
        self.stream: OpenLineageStream = ol_stream(seed, runs, jobs=60, datasets=80)
        super().__init__(settings, rate, len(self.stream.messages))

    @property
    def events(self) -> int:
        return len(self.stream.messages) - self.stream.malformed

    @property
    def malformed(self) -> int:
        return self.stream.malformed

    def _send(self) -> None:
        failed: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failed.append(err)

        producer = Producer({**self.settings.kafka_config(), "linger.ms": 5, "log_level": 3})
        started = time.monotonic()
        for i, (key, value) in enumerate(self.stream.messages):
            producer.produce(self.settings.topics.openlineage, value=value, key=key, on_delivery=on_delivery)
            producer.poll(0)
            self._pace(i, started)
        left = producer.flush(300)
        if left or failed:
            raise RuntimeError(f"{left} message(s) not delivered, {len(failed)} failed: {failed[:3]}")

    def compare(self, result: RunResult, counted: dict[str, Any]) -> RunResult:
        stored = {(src, dst, run_id) for src, dst, _, run_id in counted["edges"]}
        result.lost_edges = len(self.stream.edges - stored)
        result.unexpected_edges = len(stored - self.stream.edges)
        result.runs_missing = len(self.stream.runs - set(counted["runs"]))
        result.dead_letters_missing = self.stream.malformed - int(counted["letters"])
        return result


Fault = Callable[[Pipeline, random.Random, list[str], float], None]


def run_workload(
    name: str, work: _Paced, fault: Fault, *, seed: int, faults: int = 3, pipeline: Pipeline | None = None
) -> RunResult:
    """Stream `work`; `faults` times at random moments of the stream, apply `fault`; drain; count the store against
    the workload's truth."""
    rng = random.Random(seed)
    pipe = pipeline or Pipeline(work.settings)
    pipe.start_sink()
    pipe.start_worker()
    work.start()
    started = time.monotonic()
    done: list[str] = []
    moments = sorted(rng.uniform(0.5, work.duration) for _ in range(faults))
    try:
        for at in moments:
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            fault(pipe, rng, done, time.monotonic() - started)
        work.join()
        drain_s, stalled = pipe.wait_drained()
        pipe.stop_sink()
        counted = pipe.count()
    finally:
        pipe.stop()
    result = RunResult(
        scenario=name,
        seed=seed,
        events=work.events,
        messages=work.messages,
        malformed=work.malformed,
        faults=done + pipe.restarts,
        drain_s=round(drain_s, 2),
        stalled=stalled,
        duplicate_rows_before_collapse=int(counted["dup_before"]),
        duplicate_rows_after_collapse=int(counted["dup_after"]),
    )
    return work.compare(result, counted)


def run_scenario(
    name: str,
    settings: Settings,
    fault: Fault,
    *,
    seed: int,
    events: int = 6_000,
    rate: float = 1_500.0,
    faults: int = 3,
    pipeline: Pipeline | None = None,
) -> RunResult:
    """The simulator's `events` at `rate`/s to the events topic (`run_workload`)."""
    work = Workload(settings, seed, events, rate)
    return run_workload(name, work, fault, seed=seed, faults=faults, pipeline=pipeline)


def run_openlineage_scenario(
    name: str,
    settings: Settings,
    fault: Fault,
    *,
    seed: int,
    runs: int = 1_500,
    rate: float = 1_000.0,
    faults: int = 3,
    pipeline: Pipeline | None = None,
) -> RunResult:
    """The OpenLineage stream of `runs` runs at `rate` messages/s to the OpenLineage topic (`run_workload`)."""
    work = OpenLineageWorkload(settings, seed, runs, rate)
    return run_workload(name, work, fault, seed=seed, faults=faults, pipeline=pipeline)


# ---- the faults -----------------------------------------------------------------------------------


def _kill_and_restart(what: str) -> Fault:
    """SIGKILL the worker or the sink, restart it after a random pause of up to 2 s."""

    def fault(pipe: Pipeline, rng: random.Random, done: list[str], at: float) -> None:
        (pipe.kill_worker if what == "worker" else pipe.kill_sink)()
        pause = rng.uniform(0.0, 2.0)
        time.sleep(pause)
        (pipe.start_worker if what == "worker" else pipe.start_sink)()
        done.append(f"{at:.1f}s {what} SIGKILL, restarted after {pause:.1f}s")

    return fault


kill_worker = _kill_and_restart("worker")
kill_sink = _kill_and_restart("sink")


def restart_gracefully(pipe: Pipeline, rng: random.Random, done: list[str], at: float) -> None:
    which = rng.choice(["worker", "sink"])
    if which == "worker":
        pipe.stop_worker()
        pipe.start_worker()
    else:
        pipe.stop_sink()
        pipe.start_sink()
    done.append(f"{at:.1f}s {which} SIGTERM and restart")


def kill_broker(broker: Any) -> Fault:
    """SIGKILL the run's own broker and start it again on the same port and data directory."""

    def fault(pipe: Pipeline, rng: random.Random, done: list[str], at: float) -> None:
        broker.kill()
        pause = rng.uniform(1.0, 4.0)
        time.sleep(pause)
        broker.start(timeout=120)
        done.append(f"{at:.1f}s broker SIGKILL, restarted after {pause:.1f}s")

    return fault


def refuse_inserts(pipe: Pipeline, rng: random.Random, done: list[str], at: float) -> None:
    """ClickHouse refuses every insert into `edges` for a while (TOO_MANY_PARTS, a code the sink retries)."""
    assert isinstance(pipe, StackPipeline)
    client, db = pipe.stack.storage.write_client, pipe.stack.storage.database
    client.command(f"SYSTEM STOP MERGES {db}.edges")
    client.command(f"ALTER TABLE {db}.edges MODIFY SETTING parts_to_throw_insert = 1")
    before = _insert_failures()
    hold = rng.uniform(3.0, 10.0)
    time.sleep(hold)
    refused = _insert_failures() - before
    client.command(f"ALTER TABLE {db}.edges RESET SETTING parts_to_throw_insert")
    client.command(f"SYSTEM START MERGES {db}.edges")
    assert refused > 0, "ClickHouse never refused an insert: the fault did not happen"
    done.append(f"{at:.1f}s ClickHouse refused inserts into edges for {hold:.1f}s ({refused:.0f} refused)")


def _insert_failures() -> float:
    from prometheus_client import REGISTRY

    from sinks.metrics import INSERT_FAILURES

    return sum(
        s.value
        for m in REGISTRY.collect()
        for s in m.samples
        if s.name == f"{INSERT_FAILURES}_total" or s.name == INSERT_FAILURES
    )


def lose_table(pipe: Pipeline, rng: random.Random, done: list[str], at: float) -> None:
    """The `edges` table goes away: the sink stops with the reason (a permanent error); the operator's remedy
    (docs/operations.md) is a new database and a new sink group, which reload everything from the topics."""
    assert isinstance(pipe, StackPipeline)
    from upriver.deploy.components import open_storage

    stack = pipe.stack
    client, db = stack.storage.write_client, stack.storage.database
    client.command(f"DROP TABLE {db}.edges SYNC")
    pipe.expected_failures.add("sink")
    deadline = time.monotonic() + 60
    while not any(f.stage == "sink" for f in stack.failures()):
        if time.monotonic() > deadline:
            raise AssertionError("the sink did not stop after its table went away")
        time.sleep(0.2)
    reason = next(f.reason for f in stack.failures() if f.stage == "sink")
    uid = uuid.uuid4().hex[:6]
    stack.settings = replace(
        stack.settings, clickhouse_database=f"{db}_r{uid}", sink_group=f"{stack.settings.sink_group}-r{uid}"
    )
    pipe.settings = stack.settings
    stack.storage = open_storage(stack.settings)
    stack.start_sink()
    pipe.expected_failures.discard("sink")
    done.append(f"{at:.1f}s edges dropped; the sink stopped ({reason[:80]}); reloaded into a new database")


def write_results(path: Path, results: list[RunResult], machine: dict[str, Any]) -> None:
    by: dict[str, list[RunResult]] = {}
    for r in results:
        by.setdefault(r.scenario, []).append(r)
    summary = {
        name: {
            "runs": len(rs),
            "runs_ok": sum(r.ok for r in rs),
            "events_acked": sum(r.events for r in rs),
            "lost_edges": sum(r.lost_edges for r in rs),
            "runs_missing": sum(r.runs_missing for r in rs),
            "dead_letters_missing": sum(r.dead_letters_missing for r in rs),
            "duplicate_rows_before_collapse": sum(r.duplicate_rows_before_collapse for r in rs),
            "duplicate_rows_after_collapse": sum(r.duplicate_rows_after_collapse for r in rs),
            "stalls": sum(bool(r.stalled) for r in rs),
            "drain_s_median": sorted(r.drain_s for r in rs)[len(rs) // 2],
            "drain_s_max": max(r.drain_s for r in rs),
        }
        for name, rs in by.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"machine": machine, "summary": summary, "runs": [r.record() for r in results]}, indent=2) + "\n"
    )
