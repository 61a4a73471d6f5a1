"""Upriver beside Data.Rentgen (benchmarks/rentgen.py) on one OpenLineage Kafka stream, one box, one run.

The stream: OpenLineage 2-0-2 RunEvents made here from a seed, compact JSON values keyed as the openlineage-python
`kafka` transport keys a RunEvent (`run:{job namespace}/{job name}`; tests/unit/test_peers_stream.py checks it
against the client's transport); the events and their facets are built here, not by the client's serializer
(which would add its own `_producer`, facet versions and empty `inputFacets`): 481 jobs over 643 datasets in
four namespaces, a layered DAG whose inputs are drawn with Zipf weights (so a few datasets feed many jobs:
hubs), 29 runs a job (START and COMPLETE, both naming the job's inputs and outputs with schema facets),
UUIDv7 run ids, times in the last hour: 27,898 messages of ~3.0 KB. The truth is the spec's: every
(input, output) pair of a run is an edge, read from the messages; a lineage answer at depth d is every
dataset within d such hops (tests/ol_truth.py's rule).

Phases, each system reading the same topic with its own consumer group:
1. the stream is written once, with both consumers stopped;
2. Upriver's worker starts (its stack: broker, faust worker, sink, API): burst consume rate, measured as
   completed runs visible in its store (polled every 0.2 s) from the first to the last, and CPU per message of
   worker, controller (sink, chDB, API) and broker;
3. Data.Rentgen (PostgreSQL 15, its consumer and server) the same: completed runs visible in PostgreSQL; CPU of
   its consumer, every PostgreSQL process and the broker;
4. lineage queries over each REST API, the same datasets: leaf, mid and hub (10 each, ranked by how many jobs
   touch them), downstream and upstream, depths 2, 5 and 10, 3 rounds; every answer is compared with the truth
   (`exact` counts answers equal to it);
5. paced 200 messages/s for 60 s read by both, then 1,000/s for 60 s by Upriver alone (Data.Rentgen's consumer
   stopped): every 0.25 s one probe run (a new input and output) among the regular runs, and each system's REST
   answer polled until the probe's edge is in it: emit -> queryable. Emitter and pollers run in a child process
   so they do not share the controller's interpreter with Upriver's sink and API.

    python -m benchmarks.peers                       # or: make bench-peers; writes benchmarks/results/peers.json
    python -m benchmarks.peers --upriver-only --profile   # Upriver's burst alone, py-spy -> peers_upriver.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.e2e import bench_settings, cpu_seconds, machine, peak_rss_mib
from benchmarks.graph import _pct
from benchmarks.profile_e2e import Recorder
from benchmarks.rentgen import (
    VERSION,
    Postgres,
    Rentgen,
    dataset_id,
    datasets_in_answer,
    ensure_installed,
    lineage,
    process_tree,
)
from benchmarks.rest import Api
from schemas.identity import node_id, parse
from upriver.local.stack import LocalStack

RESULTS = Path(__file__).parent / "results" / "peers.json"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.40.1/client/python"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
SQL_FACET = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"
NAMESPACES = (
    ("postgres://warehouse.internal:5432", "analytics.public.{}"),
    ("s3://lake-raw", "events/{}"),
    ("hdfs://namenode.internal:8020", "/warehouse/stage/{}"),
    ("kafka://broker.internal:9092", "topic.{}"),
)
JOB_NAMESPACES = ("airflow-prod", "spark-etl", "dbt-analytics")
DEPTHS = (2, 5, 10)
ROLE_SAMPLE = 10
ROUNDS = 3
PROBE_EVERY_S = 0.25

DEFAULT_SEED = 11  # the stream's seed (peers.json's runs)
Key = tuple[str, str]  # (namespace, name) of a dataset
Answer = Callable[[Key, str, int], tuple[float, int, set[Key]]]  # (start, direction, depth) -> (s, status, found)


def uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 (RFC 9562) for the millisecond `ms`: Data.Rentgen partitions runs by this time."""
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Job:
    namespace: str
    name: str
    inputs: tuple[Key, ...]
    outputs: tuple[Key, ...]


@dataclass
class Stream:
    jobs: list[Job]
    datasets: list[Key]
    fields: dict[Key, list[dict[str, str]]]
    messages: list[tuple[bytes, bytes]]

    def edges(self) -> dict[Key, set[Key]]:
        """src -> dsts read from the messages themselves (the spec's rule: every input x output pair of a run),
        not from the generator's jobs."""
        down: dict[Key, set[Key]] = defaultdict(set)
        for _, value in self.messages:
            ev = json.loads(value)
            outputs = [(d["namespace"], d["name"]) for d in ev.get("outputs") or []]
            for d in ev.get("inputs") or []:
                down[(d["namespace"], d["name"])].update(outputs)
        return down


def _dataset(ns: str, name: str, fields: list[dict[str, str]]) -> dict[str, Any]:
    return {"namespace": ns, "name": name,
            "facets": {"schema": {"_producer": PRODUCER, "_schemaURL": FACET, "fields": fields}}}  # fmt: skip


def event(kind: str, job: Job, run_id: str, ms: int, fields: dict[Key, list[dict[str, str]]]) -> dict[str, Any]:
    sql = f"INSERT INTO {job.outputs[0][1]} SELECT * FROM " + " JOIN ".join(n for _, n in job.inputs)
    return {
        "eventType": kind,
        "eventTime": _iso(ms),
        "run": {"runId": run_id, "facets": {}},
        "job": {
            "namespace": job.namespace,
            "name": job.name,
            "facets": {"sql": {"_producer": PRODUCER, "_schemaURL": SQL_FACET, "query": sql}},
        },
        "inputs": [_dataset(ns, n, fields.get((ns, n), [])) for ns, n in job.inputs],
        "outputs": [_dataset(ns, n, fields.get((ns, n), [])) for ns, n in job.outputs],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def encode(ev: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value): compact JSON, keyed as the openlineage-python kafka transport keys a RunEvent."""
    key = f"run:{ev['job']['namespace']}/{ev['job']['name']}"
    return key.encode(), json.dumps(ev, separators=(",", ":")).encode()


def make_stream(seed: int, n_jobs: int = 481, n_datasets: int = 643, runs_per_job: int = 29) -> Stream:
    rng = random.Random(seed)
    sources = n_datasets - n_jobs  # every job writes one dataset of its own; the rest are sources
    datasets: list[Key] = []
    for i in range(n_datasets):
        ns, pattern = NAMESPACES[i % len(NAMESPACES)]
        datasets.append((ns, pattern.format(f"{'src' if i < sources else 'tbl'}_{i:04d}")))
    fields = {
        d: [
            {
                "name": f"col_{k:02d}_{rng.choice(('id', 'amount', 'ts', 'label', 'region'))}",
                "type": rng.choice(("BIGINT", "VARCHAR", "TIMESTAMP", "DOUBLE")),
            }
            for k in range(6)
        ]
        for d in datasets
    }
    jobs = []
    for j in range(n_jobs):
        out = sources + j
        pool = list(range(out))  # any earlier dataset: a DAG
        weights = [1.0 / (1 + k) ** 1.1 for k in range(len(pool))]  # Zipf: the first ones are hubs
        picks = {rng.choices(pool, weights)[0] for _ in range(rng.randint(1, 3))}
        picks.add(rng.randrange(max(out - 40, 0), out))  # and a recent one: deep chains, not a star
        if j < sources:
            picks.add(j)  # every source is read by some job
        jobs.append(Job(JOB_NAMESPACES[j % 3], f"pipeline_{j // 20:02d}.task_{j:04d}",
                        tuple(datasets[p] for p in sorted(picks)), (datasets[out],)))  # fmt: skip
    messages = []
    base = int(time.time() * 1000) - 3_600_000
    order = [job for _ in range(runs_per_job) for job in jobs]
    step = 3_500_000 // len(order)
    for r, job in enumerate(order):
        start = base + r * step
        run_id = uuid7(start, rng)
        messages.append(encode(event("START", job, run_id, start, fields)))
        messages.append(encode(event("COMPLETE", job, run_id, start + step // 2, fields)))
    return Stream(jobs, datasets, fields, messages)


def truth(down: dict[Key, set[Key]], start: Key, depth: int) -> set[Key]:
    seen: set[Key] = set()
    frontier = {start}
    for _ in range(depth):
        frontier = {n for f in frontier for n in down.get(f, ()) if n not in seen and n != start}
        if not frontier:
            break
        seen |= frontier
    return seen


def roles(stream: Stream) -> dict[str, list[Key]]:
    """Leaf, mid and hub datasets: ranked by how many jobs touch them, ties by a hash of the name."""
    touched: dict[Key, int] = defaultdict(int)
    for job in stream.jobs:
        for d in job.inputs + job.outputs:
            touched[d] += 1
    ranked = sorted(touched, key=lambda d: (touched[d], hash_key(d)))
    mid = len(ranked) // 2 - ROLE_SAMPLE // 2
    return {"leaf": ranked[:ROLE_SAMPLE], "mid": ranked[mid : mid + ROLE_SAMPLE], "hub": ranked[-ROLE_SAMPLE:]}


def hash_key(d: Key) -> str:
    return hashlib.sha1("\x00".join(d).encode()).hexdigest()


# ---- the two systems' answers ------------------------------------------------------------------------


def datasets_of(ids: Iterable[str], start: Key) -> set[Key]:
    """The datasets among an Upriver answer's node ids, columns and the start left out."""
    refs = (parse(i) for i in ids)
    return {(r.namespace, r.name) for r in refs if r.field is None} - {start}


def upriver_answer(api: Api, start: Key, direction: str, depth: int) -> tuple[float, int, set[Key]]:
    took, status, body = api.get(f"/api/v1/{direction}", node=node_id("DATASET", *start), depth=depth)
    if status != 200:
        return took, status, set()
    return took, status, datasets_of((n["id"] for n in body["nodes"]), start)


def rentgen_answer(
    api: Api, ids: dict[Key, str], start: Key, direction: str, depth: int
) -> tuple[float, int, set[Key]]:
    took, status, body = lineage(api, ids[start], direction.upper(), depth)
    return took, status, datasets_in_answer(body, ids[start]) if status == 200 else set()


def queries(stream: Stream, down: dict[Key, set[Key]], answer: Answer) -> dict[str, Any]:
    """Every (role, direction, depth) cell: p50/p95 over ROLE_SAMPLE datasets x ROUNDS, exact answers; `down`
    is the truth's src -> dsts (`Stream.edges`)."""
    up: dict[Key, set[Key]] = defaultdict(set)
    for src, dsts in down.items():
        for dst in dsts:
            up[dst].add(src)
    cells: dict[str, Any] = {}
    exact = total = 0
    mismatches: list[str] = []
    for role, sample in roles(stream).items():
        for direction, graph in (("downstream", down), ("upstream", up)):
            for depth in DEPTHS:
                times, sizes = [], []
                wants = {d: truth(graph, d, depth) for d in sample}
                for _ in range(ROUNDS):
                    for d in sample:
                        took, status, found = answer(d, direction, depth)
                        want = wants[d]
                        times.append(took * 1000)
                        sizes.append(len(want))
                        total += 1
                        if status == 200 and found == want:
                            exact += 1
                        elif len(mismatches) < 5:
                            missing, extra = sorted(want - found)[:3], sorted(found - want)[:3]
                            mismatches.append(f"{direction} {d} d{depth}: {status}, missing {missing}, extra {extra}")
                cells[f"{role}_{direction}_d{depth}"] = {
                    "p50_ms": round(statistics.median(times), 2),
                    "p95_ms": round(_pct(times, 0.95), 2),
                    "median_answer_datasets": statistics.median(sizes),
                }
    return {"cells": cells, "answers": total, "exact": exact, "mismatches": mismatches}


# ---- burst ----------------------------------------------------------------------------------------


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                         "enable.idempotence": True, "compression.type": "none"})  # fmt: skip
    started = time.monotonic()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("the stream was not all acknowledged")
    return time.monotonic() - started


def burst(
    count: Callable[[], int], runs: int, messages: int, pids: dict[str, Callable[[], list[int]]], timeout: float = 900
) -> dict[str, Any]:
    """Poll `count()` (completed runs visible) every 0.2 s until `runs`; rate from the first seen to the last."""
    before = {name: sum(cpu_seconds(p) for p in ps()) for name, ps in pids.items()}
    started = time.monotonic()
    first: tuple[float, int] | None = None
    while True:
        n = count()
        now = time.monotonic()
        if n and first is None:
            first = (now, n)
        if n >= runs:
            break
        if now - started > timeout:
            raise TimeoutError(f"{n} of {runs} runs visible after {timeout:.0f} s")
        time.sleep(0.2)
    cpu = {name: sum(cpu_seconds(p) for p in ps()) - before[name] for name, ps in pids.items()}
    assert first is not None
    span = max(now - first[0], 1e-3)
    rate = (runs - first[1]) * (messages / runs) / span
    return {
        "messages": messages,
        "runs": runs,
        "events_per_s": round(rate, 1),
        "first_visible_s": round(first[0] - started, 2),
        "last_visible_s": round(now - started, 2),
        "cpu_us_per_event": {k: round(1e6 * v / messages, 1) for k, v in cpu.items()},
        "cpu_us_per_event_total": round(1e6 * sum(cpu.values()) / messages, 1),
    }


# ---- paced (child process) --------------------------------------------------------------------------


def paced(bootstrap: str, topic: str, rate: float, seconds: float, seed: int, jobs: list[Job],
          fields: dict[Key, list[dict[str, str]]], targets: dict[str, tuple[str, str]]) -> dict[str, Any]:  # fmt: skip
    """Emit `rate` messages/s for `seconds` (regular runs of `jobs`, a probe run every PROBE_EVERY_S) and poll
    each target's REST API for each probe's edge: emit -> queryable per target. Runs in a child process."""
    from confluent_kafka import Producer

    rng = random.Random(seed)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", "enable.idempotence": True})
    tag = secrets.token_hex(3)
    probes: list[tuple[Key, Key, float]] = []  # (input, output, emitted at)
    lock = threading.Lock()
    done = threading.Event()
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    missed: dict[str, int] = {name: 0 for name in targets}

    def poll(name: str, base_url: str, token: str) -> None:
        api = Api(base_url, token)
        ids: dict[Key, str] = {}
        seen = 0
        while True:
            with lock:
                pending = probes[seen:]
            if not pending:
                if done.is_set():
                    return
                time.sleep(0.005)
                continue
            src, dst, emitted = pending[0]
            ok = False
            if name == "upriver":
                _, status, found = upriver_answer(api, src, "downstream", 1)
                ok = status == 200 and dst in found
            else:
                if src not in ids:
                    got = dataset_id(api, *src)
                    if got is not None:
                        ids[src] = got
                if src in ids:
                    _, status, found = rentgen_answer(api, ids, src, "downstream", 1)
                    ok = status == 200 and dst in found
            now = time.time()
            if ok:
                latencies[name].append((now - emitted) * 1000)
                seen += 1
            elif now - emitted > 120:
                missed[name] += 1
                seen += 1
            else:
                time.sleep(0.005)

    threads = [threading.Thread(target=poll, args=(name, *t), daemon=True) for name, t in targets.items()]
    for t in threads:
        t.start()
    ms = int(time.time() * 1000)
    started = time.monotonic()
    total = int(rate * seconds)
    next_probe = 0.0
    sent = 0
    running: tuple[Job, str] | None = None
    for i in range(total):
        due = started + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        elapsed = time.monotonic() - started
        if elapsed >= next_probe:
            k = len(probes)
            src = ("s3://lake-raw", f"events/probe_{tag}_{k:05d}")
            dst = ("postgres://warehouse.internal:5432", f"analytics.public.probe_{tag}_{k:05d}")
            job = Job("spark-etl", f"probe.{tag}.{k:05d}", (src,), (dst,))
            key, value = encode(
                event("COMPLETE", job, uuid7(int(time.time() * 1000), rng), int(time.time() * 1000), {})
            )
            emitted = time.time()
            producer.produce(topic, value, key)
            producer.poll(0)
            with lock:
                probes.append((src, dst, emitted))
            next_probe += PROBE_EVERY_S
        else:
            now_ms = ms + int(elapsed * 1000)
            if running is None:  # a regular run: its START, then its COMPLETE
                running = (jobs[rng.randrange(len(jobs))], uuid7(now_ms, rng))
                key, value = encode(event("START", *running, now_ms, fields))
            else:
                key, value = encode(event("COMPLETE", *running, now_ms, fields))
                running = None
            producer.produce(topic, value, key)
            producer.poll(0)
        sent += 1
    producer.flush(60)
    achieved = sent / (time.monotonic() - started)
    done.set()
    for t in threads:
        t.join(timeout=180)
    out: dict[str, Any] = {"rate_msgs_per_s": rate, "achieved_msgs_per_s": round(achieved, 1), "seconds": seconds,
                           "messages": sent, "probes": len(probes)}  # fmt: skip
    for name, lat in latencies.items():
        lat.sort()
        out[name] = {"probes_seen": len(lat), "probes_missed": missed[name]}
        if lat:
            out[name].update({"p50_ms": round(statistics.median(lat), 1), "p95_ms": round(_pct(lat, 0.95), 1),
                              "p99_ms": round(_pct(lat, 0.99), 1), "max_ms": round(lat[-1], 1)})  # fmt: skip
    return out


def run_paced(**kwargs: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(paced, **kwargs).result()


# ---- the run --------------------------------------------------------------------------------------


def stream_figures(stream: Stream, down: dict[Key, set[Key]]) -> dict[str, Any]:
    return {
        "messages": len(stream.messages),
        "mean_message_bytes": round(statistics.mean(len(v) for _, v in stream.messages)),
        "jobs": len(stream.jobs),
        "datasets": len({d for j in stream.jobs for d in j.inputs + j.outputs}),
        "runs": len(stream.messages) // 2,
        "edges": sum(len(v) for v in down.values()),
    }


def _rss(pids: list[int]) -> float:
    return round(sum(max(peak_rss_mib(p), 0.0) for p in pids), 1)


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    stream = make_stream(args.seed)
    down = stream.edges()
    figures: dict[str, Any] = {"stream": {**stream_figures(stream, down), "seed": args.seed}}
    runs = figures["stream"]["runs"]
    print(f"stream: {figures['stream']}", file=sys.stderr, flush=True)
    python = ensure_installed(Path(args.cache))
    settings = bench_settings(workdir / "upriver", "peers")
    with LocalStack(settings, api_port=0) as stack:
        stack.wait_worker_ready()
        stack.stop_worker()
        assert stack.broker is not None and stack.broker.pid is not None and stack.api is not None
        topic = stack.settings.topics.openlineage
        bootstrap = stack.settings.kafka_bootstrap
        figures["stream"]["produce_s"] = round(produce(bootstrap, topic, stream.messages), 1)
        storage = stack.storage
        assert storage is not None
        db = storage.database

        def upriver_count() -> int:
            rows = storage.read_client.query(
                f"SELECT uniqExact(run_id) FROM `{db}`.runs WHERE status = 'COMPLETE'"
            ).result_rows
            return int(rows[0][0])

        broker_pid = stack.broker.pid
        stack.start_worker()
        assert stack.worker is not None
        worker_pid = stack.worker.pid
        print("upriver: burst", file=sys.stderr, flush=True)
        recorders = {}
        if args.profile:
            recorders = {name: Recorder(pid, workdir / f"{name}.raw", 100)
                         for name, pid in (("worker", worker_pid), ("controller", os.getpid()))}  # fmt: skip
        up_burst = burst(upriver_count, runs, len(stream.messages),
                         {"worker": lambda: [worker_pid], "controller": lambda: [os.getpid()],
                          "broker": lambda: [broker_pid]})  # fmt: skip
        if recorders:
            up_burst["profile"] = {name: r.stop() for name, r in recorders.items()}
        print(f"upriver burst: {up_burst}", file=sys.stderr, flush=True)
        figures["upriver"] = {"burst": up_burst, "health_enabled": stack.settings.health_enabled}
        if args.upriver_only:
            return figures
        with Postgres(workdir / "pg" / "data") as pg, Rentgen(python, pg.dsn, bootstrap, topic, workdir / "rentgen",
                                                             group_id=f"rentgen-{time.time_ns()}") as rg:  # fmt: skip
            rg.prepare()
            rg.start_server()
            time.sleep(2)
            rg.start_consumer()
            assert rg.consumer is not None
            consumer_pid = rg.consumer.pid

            def rentgen_count() -> int:
                got = pg.psql("SELECT count(*) FROM run WHERE ended_at IS NOT NULL")
                return int(got) if got.isdigit() else 0

            print("rentgen: burst", file=sys.stderr, flush=True)
            rg_burst = burst(rentgen_count, runs, len(stream.messages),
                             {"consumer": lambda: [consumer_pid], "postgres": pg.server_pids,
                              "broker": lambda: [broker_pid]})  # fmt: skip
            print(f"rentgen burst: {rg_burst}", file=sys.stderr, flush=True)
            figures["rentgen"] = {"burst": rg_burst}
            time.sleep(6)  # the consumer's last batch committed and idle

            up_api = Api(stack.api.url)
            assert rg.api is not None
            ids: dict[Key, str] = {}
            for line in pg.psql("SELECT d.id, l.type || '://' || l.name, d.name FROM dataset d "
                                "JOIN location l ON l.id = d.location_id").splitlines():  # fmt: skip
                i, ns, name = line.split("|", 2)
                ids[(ns, name)] = i
            print("queries", file=sys.stderr, flush=True)
            rg_api = rg.api
            figures["upriver"]["queries"] = queries(stream, down, lambda d, dr, k: upriver_answer(up_api, d, dr, k))
            figures["rentgen"]["queries"] = queries(
                stream, down, lambda d, dr, k: rentgen_answer(rg_api, ids, d, dr, k)
            )
            for name in ("upriver", "rentgen"):
                q = figures[name]["queries"]
                print(f"{name} queries: exact {q['exact']}/{q['answers']} {q['mismatches'][:2]}",
                      file=sys.stderr, flush=True)  # fmt: skip

            targets = {"upriver": (stack.api.url, ""), "rentgen": (rg.base_url, rg.api.token)}
            common = {
                "bootstrap": bootstrap,
                "topic": topic,
                "seconds": args.paced_seconds,
                "jobs": stream.jobs,
                "fields": stream.fields,
            }
            print("paced 200/s, both", file=sys.stderr, flush=True)
            figures["paced_200"] = run_paced(rate=200.0, seed=args.seed + 1, targets=targets, **common)
            print(f"paced 200: {figures['paced_200']}", file=sys.stderr, flush=True)
            figures["rentgen"]["peak_rss_mib"] = {"consumer": _rss([consumer_pid]), "server": _rss(
                process_tree(rg.server.pid) if rg.server else []), "postgres_sum": _rss(pg.server_pids())}  # fmt: skip
            rg.stop_consumer()
            print("paced 1000/s, upriver", file=sys.stderr, flush=True)
            figures["paced_1000"] = run_paced(rate=1000.0, seed=args.seed + 2,
                                              targets={"upriver": targets["upriver"]}, **common)  # fmt: skip
            print(f"paced 1000: {figures['paced_1000']}", file=sys.stderr, flush=True)
        figures["upriver"]["peak_rss_mib"] = {"worker": _rss([worker_pid]), "controller": _rss([os.getpid()])}
    return figures


def ratios(f: dict[str, Any]) -> dict[str, Any]:
    up, rg = f["upriver"], f["rentgen"]
    out: dict[str, Any] = {
        "consume_rate_upriver_over_rentgen": round(up["burst"]["events_per_s"] / rg["burst"]["events_per_s"], 2),
        "cpu_per_event_upriver_over_rentgen": round(
            up["burst"]["cpu_us_per_event_total"] / rg["burst"]["cpu_us_per_event_total"], 2
        ),
    }
    p200 = f["paced_200"]
    if "p50_ms" in p200.get("upriver", {}) and "p50_ms" in p200.get("rentgen", {}):
        out["paced_200_p50_upriver_over_rentgen"] = round(p200["upriver"]["p50_ms"] / p200["rentgen"]["p50_ms"], 2)
    out["query_upriver_over_rentgen"] = {
        cell: {q: round(v[q] / max(rg["queries"]["cells"][cell][q], 1e-3), 2) for q in ("p50_ms", "p95_ms")}
        for cell, v in up["queries"]["cells"].items()
    }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--paced-seconds", type=float, default=60.0)
    p.add_argument("--cache", default=os.environ.get("UPRIVER_CACHE_DIR", str(Path(__file__).resolve().parents[1]
                                                                               / ".cache")))  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    p.add_argument("--profile", action="store_true", help="py-spy (PyPI) on worker and controller in the burst")
    p.add_argument(
        "--upriver-only",
        action="store_true",
        help="stop after Upriver's burst; writes results/peers_upriver.json unless --out says otherwise",
    )
    p.add_argument("--stream-only", action="store_true", help="print the stream's figures and stop")
    args = p.parse_args(argv)
    if args.stream_only:
        s = make_stream(args.seed)
        print(json.dumps(stream_figures(s, s.edges())))
        return 0
    with tempfile.TemporaryDirectory(prefix="upriver-peers-", dir=args.workdir) as tmp:
        os.chmod(tmp, 0o755)
        figures = bench(args, Path(tmp))
    if args.upriver_only:
        out = args.out if args.out != RESULTS else RESULTS.with_name("peers_upriver.json")
        doc = {"benchmark": "peers --upriver-only", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), "stream": figures["stream"], "upriver": figures["upriver"],
               "notes": "Upriver's burst alone" + (", py-spy sampling worker and controller at 100 Hz (it slows "
                                                   "them)" if args.profile else "")}  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {out}")
        return 0
    result = {
        "benchmark": "peers",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "peer": {"name": "Data.Rentgen", "package": f"data-rentgen=={VERSION}", "storage": "PostgreSQL 15 (Debian)"},
        **figures,
        "ratios": ratios(figures),
        "notes": "one run; upriver CPU = worker + controller (sink, chDB, API) + broker; rentgen CPU = consumer + "
        "every PostgreSQL process + broker; queries over each REST API with one keep-alive connection; paced "
        "emitter and pollers in a child process",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"]))
    print(f"wrote {args.out}")
    exact = all(result[n]["queries"]["exact"] == result[n]["queries"]["answers"] for n in ("upriver", "rentgen"))
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
