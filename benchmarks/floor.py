"""The floor under the end-to-end figure: what each part of the pipeline costs alone, on one broker in one run.

Every part runs over the e2e workload's messages (the simulator's events, duplicates and malformed ones) with
nothing else running, and its CPU is read per input message: the Python process's own (`process_time`, every
thread: librdkafka's, chDB's) and the broker JVM's (from /proc, less its idle rate over the part's wall time).

- `encode`: the emitter's Avro encoding of each event (fastavro, single-object), in process.
- `produce`: confluent-kafka producing the encoded messages with the emitter's defaults, to 8 partitions.
- `faust_take`: a fresh faust worker reading them as the worker's agents do (`take_events` of 1,000, no
  work): faust's delivery alone, the part the design keeps (a subprocess; its start-up not counted).
- `handle`: the worker's `EventHandler` and `ChangelogWriter` in process (dedup, validation, merge, edges,
  run records, changelog records), its outputs kept in memory: today's semantics with no Kafka.
- `health`: the health engine fed those run records (decoded beforehand), advanced and flushed per batch of
  1,000 as the health agent does; `run_decode`, the agent's decoding of them, apart.
- `publish`: the worker's `Publisher` (linger 50 ms, lz4) writing every output `handle` made.
- `sink_bare`: benchmarks/ceiling.py's bare pipeline (one consumer, fastavro, chDB inserts of edge rows).
- `ol_faust_take`, `ol_in_place`: the same two for the OpenLineage Kafka path, over benchmarks/peers.py's stream
  (~3 KB JSON messages): faust's delivery of them, and the worker's in-place handling in process
  (benchmarks/openlineage_path.py: map, dedup, merge, outputs); per OpenLineage message.

From them (`bounds`): a worker process is one Python process, so at most one core: its floor is faust's
delivery + handling + health + the publisher's Python. The stack's floor adds the emitter, the sink and the
broker's share, against 2 cores. `no_semantics` is faust, the emitter and the bare sink alone: what any
faust-based pipeline of this shape pays before doing anything. The figures are this box's; the ratios carry.

Writes benchmarks/results/floor.json. Run with `make bench-floor`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.ceiling import bare_pipeline
from benchmarks.e2e import cpu_seconds, machine
from benchmarks.openlineage_path import one_round as ol_one_round
from benchmarks.peers import DEFAULT_SEED, make_stream
from benchmarks.state_pack import Message, one_round
from processors.health.config import HealthConfig
from processors.health.engine import HealthEngine
from processors.worker.app import RUN_STATE_PACK, TAKE_MAX
from processors.worker.publisher import Publisher
from producers.kafka import PRODUCER_DEFAULTS
from producers.simulator import Simulator
from schemas.codec import make_codec

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 8
EVENTS_TOPIC = "floor.events"
OL_TOPIC = "floor.openlineage"

# faust's delivery alone, as the worker's agents take it: batches of up to TAKE_MAX within 50 ms, no work.
FAUST_TAKE = r"""
import json, os, sys, time, faust
bootstrap, topic, n, take, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
app = faust.App(f"floor-{os.getpid()}", broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                consumer_auto_offset_reset="earliest")
src = app.topic(topic, value_type=bytes, value_serializer="raw", key_serializer="raw")
seen = {"n": 0, "t0": 0.0, "c0": 0.0}
@app.agent(src)
async def run(stream):
    async for batch in stream.take_events(take, within=0.05):
        if not seen["t0"]:
            seen["t0"], seen["c0"] = time.perf_counter(), time.process_time()
        seen["n"] += len(batch)
        if seen["n"] >= n:
            wall, cpu = time.perf_counter() - seen["t0"], time.process_time() - seen["c0"]
            open(out, "w").write(json.dumps({"messages": seen["n"], "wall_s": wall, "cpu_s": cpu}))
            os._exit(0)
faust.Worker(app, loglevel="ERROR", quiet=True).execute_from_commandline()
"""


@dataclass
class Part:
    """One part's cost: seconds of wall time, of this process's CPU (or the part's own process) and the broker's."""

    wall_s: float
    cpu_s: float
    broker_s: float

    def per_message(self, messages: int) -> dict[str, float]:
        return {
            "python_us": round(1e6 * self.cpu_s / messages, 1),
            "broker_us": round(1e6 * max(self.broker_s, 0.0) / messages, 1),
            "wall_us": round(1e6 * self.wall_s / messages, 1),
            "messages_per_s": round(messages / self.wall_s, 1) if self.wall_s else 0.0,
        }


class Broker:
    """The broker JVM's CPU over a part, less what it spends idle (KRaft's own heartbeats and timers)."""

    def __init__(self, pid: int, idle_s: float = 5.0) -> None:
        self.pid = pid
        c0 = cpu_seconds(pid)
        time.sleep(idle_s)
        self.idle_per_s = (cpu_seconds(pid) - c0) / idle_s

    def measure(self, fn: Callable[[], Any], own_cpu: bool = True) -> tuple[Part, Any]:
        b0, c0, t0 = cpu_seconds(self.pid), time.process_time(), time.perf_counter()
        result = fn()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0 if own_cpu else 0.0
        return Part(wall, cpu, cpu_seconds(self.pid) - b0 - self.idle_per_s * wall), result


class Keep:
    """The handler's output, kept to be published for real afterwards (the `publish` part)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes | None, bytes | None]] = []
        self.runs: list[bytes] = []

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.messages.append((topic, key, value))
        if topic == "runs" and value is not None:
            self.runs.append(value)


def workload(events: int, seed: int) -> tuple[list[Message], float]:
    """The e2e workload's messages and the seconds its valid events took to encode."""
    codec = make_codec("lineage_event")
    out: list[Message] = []
    encode_s = 0.0
    for m in Simulator(codec, seed=seed).messages(events):
        if m.event is not None:
            record = m.event.to_record()
            t0 = time.process_time()
            value = codec.encode(record)
            encode_s += time.process_time() - t0
        else:
            value = m.payload or b""
        out.append(Message("events", 0, len(out), m.key, value, time.time()))
    return out, encode_s


def create_topics(bootstrap: str, names: set[str]) -> None:
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in sorted(names)]).values():
        future.result(30)


def produce(bootstrap: str, messages: list[Message], topic: str = EVENTS_TOPIC) -> None:
    from confluent_kafka import Producer

    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap})
    for i, m in enumerate(messages):
        while True:
            try:
                producer.produce(topic, key=m.key, value=m.value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("produce: messages left unsent after 120 s")


def faust_take(bootstrap: str, n: int, tmp: Path, topic: str = EVENTS_TOPIC) -> dict[str, float]:
    script, out = tmp / "faust_take.py", tmp / "faust_take.json"
    script.write_text(FAUST_TAKE)
    proc = subprocess.run([sys.executable, str(script), bootstrap, topic, str(n), str(TAKE_MAX), str(out)],
                          timeout=600, check=False, capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    if not out.exists():
        raise RuntimeError(f"faust take failed ({proc.returncode}): {proc.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(out.read_text())
    out.unlink()
    return figures


def health(records: list[dict[str, Any]]) -> int:
    """The health agent's work per batch, minus Kafka and decoding: add the runs, advance, take, export."""
    engine = HealthEngine(HealthConfig())
    exported = 0
    for i in range(0, len(records), TAKE_MAX):
        for record in records[i : i + TAKE_MAX]:
            engine.add_run(record)
        engine.advance(engine.watermark)
        engine.take()
        for key in engine.take_dirty():
            engine.export(key)
            exported += 1
    return exported


def publish(bootstrap: str, outputs: list[tuple[str, bytes | None, bytes | None]]) -> None:
    publisher = Publisher({"bootstrap.servers": bootstrap})
    for topic, key, value in outputs:
        publisher.publish(f"floor.{topic}", key, value)
    publisher.flush_or_raise(120)


def openlineage_messages() -> list[Message]:
    """benchmarks/peers.py's stream, each message on the partition its key gives (as the transport sends it)."""
    stream = make_stream(DEFAULT_SEED)
    return [
        Message("openlineage", zlib.crc32(k) % PARTITIONS, i, k, v, time.time())
        for i, (k, v) in enumerate(stream.messages)
    ]


def one_run(events: int, seed: int, cache: Path) -> dict[str, Any]:
    from sinks.clickhouse import connect
    from upriver.local.broker import LocalBroker, ensure_jars

    ensure_jars(cache)
    messages, encode_s = workload(events, seed)
    n = len(messages)
    parts: dict[str, Part] = {"encode": Part(encode_s, encode_s, 0.0)}
    with tempfile.TemporaryDirectory(prefix="upriver-floor-") as tmp_name, \
            LocalBroker(Path(tmp_name) / "kafka", cache) as kafka:  # fmt: skip
        tmp = Path(tmp_name)
        bootstrap = kafka.bootstrap_servers
        assert kafka.pid is not None
        broker = Broker(kafka.pid)
        create_topics(bootstrap, {EVENTS_TOPIC})
        parts["produce"], _ = broker.measure(lambda: produce(bootstrap, messages))

        # faust's own process: its CPU is what the script read from first batch to last, not this process's
        whole, took = broker.measure(lambda: faust_take(bootstrap, n, tmp), own_cpu=False)
        parts["faust_take"] = Part(took["wall_s"], took["cpu_s"], whole.broker_s)

        out = Keep()
        with tempfile.TemporaryDirectory() as datadir:
            parts["handle"], _ = broker.measure(lambda: one_round(messages, RUN_STATE_PACK, datadir, out=out))
        run_codec = make_codec("run")
        parts["run_decode"], records = broker.measure(lambda: [run_codec.decode(v) for v in out.runs])
        parts["health"], exported = broker.measure(lambda: health(records))

        create_topics(bootstrap, {f"floor.{t}" for t, _, _ in out.messages})
        parts["publish"], _ = broker.measure(lambda: publish(bootstrap, out.messages))

        url = f"chdb://{tmp / 'chdb'}"
        connect(url).command("CREATE DATABASE IF NOT EXISTS floor")
        parts["sink_bare"], bare = broker.measure(lambda: bare_pipeline(bootstrap, EVENTS_TOPIC, url, "floor"))
        ol = openlineage_messages()
        create_topics(bootstrap, {OL_TOPIC})
        produce(bootstrap, ol, OL_TOPIC)
        whole, took = broker.measure(lambda: faust_take(bootstrap, len(ol), tmp, OL_TOPIC), own_cpu=False)
        ol_parts = {"ol_faust_take": Part(took["wall_s"], took["cpu_s"], whole.broker_s)}
        with tempfile.TemporaryDirectory() as datadir:
            ol_parts["ol_in_place"], _ = broker.measure(lambda: ol_one_round(ol, "in_place", datadir))
    per = {name: part.per_message(n) for name, part in parts.items()}
    per |= {name: part.per_message(len(ol)) for name, part in ol_parts.items()}
    return {
        "messages": n,
        "openlineage_messages": len(ol),
        "outputs": len(out.messages),
        "run_records": len(out.runs),
        "health_states_exported": exported,
        "bare_pipeline_messages_per_s": bare["messages_per_s"],
        "parts": per,
        "bounds": bounds(per),
    }


def bounds(per: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Floors per input message (us of CPU) and the events/s they allow: a worker process on one core, the
    whole stack on two, and the pipeline with no semantics on two."""

    def py(*names: str) -> float:
        return sum(per[n]["python_us"] for n in names)

    def kafka(*names: str) -> float:
        return sum(per[n]["broker_us"] for n in names)

    worker = py("faust_take", "handle", "run_decode", "health", "publish")
    worker_in_process_health = py("faust_take", "handle", "health", "publish")
    stack = worker + py("encode", "produce", "sink_bare") + kafka("produce", "faust_take", "publish", "sink_bare")
    bare = py("encode", "produce", "faust_take", "sink_bare") + kafka("produce", "faust_take", "sink_bare")
    return {
        "worker_us": round(worker, 1),
        "worker_events_per_s_one_core": round(1e6 / worker),
        "worker_health_fed_in_process_us": round(worker_in_process_health, 1),
        "worker_health_fed_in_process_events_per_s_one_core": round(1e6 / worker_in_process_health),
        "stack_us": round(stack, 1),
        "stack_events_per_s_two_cores": round(2e6 / stack),
        "no_semantics_us": round(bare, 1),
        "no_semantics_events_per_s_two_cores": round(2e6 / bare),
        "faust_take_events_per_s_one_core": round(1e6 / per["faust_take"]["python_us"]),
        "openlineage_worker_us": round(py("ol_faust_take", "ol_in_place"), 1),
        "openlineage_worker_msgs_per_s_one_core": round(1e6 / py("ol_faust_take", "ol_in_place")),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=50_000, help="valid events per run")
    p.add_argument("--runs", type=int, default=3, help="runs, each on a fresh broker (seeds 7, 8, ...)")
    p.add_argument("--out", type=Path, default=RESULTS / "floor.json")
    args = p.parse_args()
    logging.getLogger("processors").setLevel(logging.ERROR)  # the workload's malformed messages are dead-lettered
    cache = Path(os.environ.get("UPRIVER_CACHE_DIR", ROOT / ".cache"))
    runs = []
    for i in range(args.runs):
        runs.append(one_run(args.events, 7 + i, cache))
        print(json.dumps(runs[-1]["bounds"]), flush=True)
    names = list(runs[0]["parts"])
    fields = ("python_us", "broker_us", "wall_us", "messages_per_s")
    result = {
        "benchmark": "floor",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "events_per_run": args.events,
        "runs": len(runs),
        "messages_per_run": [r["messages"] for r in runs],
        "parts_p50": {n: {f: median(r["parts"][n][f] for r in runs) for f in fields} for n in names},
        "bounds_p50": {k: median(r["bounds"][k] for r in runs) for k in runs[0]["bounds"]},
        "bare_pipeline_messages_per_s_p50": median(r["bare_pipeline_messages_per_s"] for r in runs),
        "per_run": runs,
        "notes": (
            "CPU per input message (events, duplicates, malformed) of each part alone; python_us: the part's "
            "process (every thread), broker_us: the broker JVM less its idle rate; the worker's floor is one "
            "process (one core at most); the stack's adds the emitter, the bare sink and the broker; "
            "no_semantics: emitter + faust's delivery + bare sink"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("parts_p50", "bounds_p50", "bare_pipeline_messages_per_s_p50")}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
