"""The HTTP ingest's floor: each part of an OpenLineage event's way through `OpenLineageIngest`, alone, in one
process, on a real local broker, with no HTTP: CPU per event, and the events/s it leaves on 2 cores.

The events are `make bench-http`'s (benchmarks/openlineage_http.py `ol_event`: a Spark-like job, two inputs, one
output, schema and column lineage; ~1.35 KB), in batch bodies of 100 as its batch level sends them. Parts:

- `parse`: `batch_events`, the body read one event at a time (each with its text as sent).
- `map`: `to_record`, the OpenLineage event as an Upriver LineageEvent record (the event id included).
- `validate`: the processor's own rules (`problems`).
- `encode`: the Avro encoding of the record.
- `publish`: `OpenLineageIngest.publish` of the prepared events and their raw copies (two messages an event),
  waiting until Kafka acknowledged every one (the idempotent acks=all producer, librdkafka's threads included).
- `batch`: `OpenLineageIngest.batch` as a whole, what a batch request costs the server less its HTTP.
- `single`: `OpenLineageIngest.one` per event from 16 threads (as 16 keep-alive clients), less its HTTP.

CPU is this process's (`process_time`: every thread) and the broker JVM's less its idle rate, per event. From
them (`bounds`): a Python process is one core at most, so one ingest process carries at most 1e6 / its µs an
event; ingest processes on both cores (HTTP, the clients and everything else free) at most 2e6 / (the ingest's
µs + the broker's). The targets of issue 15 are 15,000 events/s in batches and 3,000 single events/s.

Writes benchmarks/results/ingest_floor.json. Run with `make bench-ingest-floor`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.e2e import machine
from benchmarks.floor import Broker, Part
from benchmarks.openlineage_http import ol_event
from processors.lineage.validation import problems
from schemas.codec import make_codec
from schemas.keys import partition_key
from schemas.openlineage import to_record
from upriver.deploy.components import openlineage_ingest
from upriver.deploy.kafka import ensure_topics
from upriver.http.ingest import OpenLineageIngest, batch_events
from upriver.local.broker import LocalBroker, ensure_jars
from upriver.settings import Settings

RESULTS = Path(__file__).parent / "results"
BATCH = 100
THREADS = 16
TARGET_BATCH, TARGET_SINGLE = 15_000, 3_000


def bodies(events: int, offset: int) -> list[bytes]:
    """Batch bodies of BATCH events each, every event a run of its own."""
    return [
        json.dumps([ol_event(offset + b * BATCH + i, str(uuid.uuid4())) for i in range(BATCH)]).encode()
        for b in range(events // BATCH)
    ]


def per_event(part: Part, events: int) -> dict[str, float]:
    return {
        "python_us": round(1e6 * part.cpu_s / events, 1),
        "broker_us": round(1e6 * max(part.broker_s, 0.0) / events, 1),
        "wall_us": round(1e6 * part.wall_s / events, 1),
    }


def singles(ingest: OpenLineageIngest, docs: list[bytes]) -> None:
    """Every body through `ingest.one`, from THREADS threads taking the next body as each finishes."""
    at = iter(docs)
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                body = next(at, None)
            if body is None:
                return
            ingest.one(body)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def one_run(settings: Settings, broker: Broker, events: int, offset: int) -> dict[str, dict[str, float]]:
    codec = make_codec("lineage_event")
    ingest = openlineage_ingest(settings)
    ingest.message_limit(topic=settings.topics.events)  # read now, not in a timed part
    if settings.topics.openlineage:
        ingest.message_limit(topic=settings.topics.openlineage)
    try:
        parts = {name: Part(0.0, 0.0, 0.0) for name in ("parse", "map", "validate", "encode", "publish")}
        last = [time.process_time(), time.perf_counter()]

        def lap(name: str) -> None:
            """The CPU and wall time since the last lap, to `name`."""
            cpu, wall = time.process_time(), time.perf_counter()
            parts[name].cpu_s += cpu - last[0]
            parts[name].wall_s += wall - last[1]
            last[:] = [cpu, wall]

        def each_part() -> None:
            # a batch at a time through every part, as a server holds one request's events (not all of them:
            # a heap of 10,000 parsed events would make the garbage collector's passes part of every figure)
            for body in bodies(events, offset):
                last[:] = [time.process_time(), time.perf_counter()]
                parsed = batch_events(body)
                lap("parse")
                records = [to_record(doc) for doc, _ in parsed]
                lap("map")
                now = int(time.time() * 1000)
                found = [problems(record, now) for record in records]
                lap("validate")
                values = [codec.encode(record) for record in records]
                lap("encode")
                assert not any(found), found[:3]
                messages = [(partition_key(r["run_id"]), v) for r, v in zip(records, values, strict=True)]
                assert not ingest.publish(messages, [sent for _, sent in parsed])
                lap("publish")

        whole, _ = broker.measure(each_part)
        parts["publish"].broker_s = whole.broker_s  # the only part that reaches the broker
        fresh = bodies(events, offset + events)
        parts["batch"], results = broker.measure(lambda: [ingest.batch(body) for body in fresh])
        assert all(r.successful == BATCH for r in results)
        one_each = [json.dumps(ol_event(offset + 2 * events + i, str(uuid.uuid4()))).encode() for i in range(events)]
        parts["single"], _ = broker.measure(lambda: singles(ingest, one_each))
        return {name: per_event(part, events) for name, part in parts.items()}
    finally:
        ingest.close()


def bounds(per: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The events/s the parts leave: one ingest process (one core), and ingest processes on both cores with
    the broker's share (and nothing for HTTP, the clients or the rest of the pipeline)."""
    out: dict[str, Any] = {}
    # A batch's broker share is the `publish` part's: the same messages, measured over a longer stretch (the
    # broker's idle rate, subtracted, is noise of the same order over `batch` alone)
    for part, target, broker_part in (("batch", TARGET_BATCH, "publish"), ("single", TARGET_SINGLE, "single")):
        python, kafka = per[part]["python_us"], per[broker_part]["broker_us"]
        out[f"{part}_events_per_s_one_process"] = round(1e6 / python)
        out[f"{part}_events_per_s_two_cores"] = round(2e6 / (python + kafka))
        out[f"{part}_target"] = target
        out[f"{part}_broker_us"] = kafka
        out[f"{part}_us_for_target_two_cores"] = round(2e6 / target - kafka, 1)  # the ingest's budget an event
    parts = ("parse", "map", "validate", "encode", "publish")
    out["parts_sum_us"] = round(sum(per[p]["python_us"] for p in parts), 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=10_000, help="events per part and run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=20_000, help="events through `batch` first (the broker's JIT)")
    p.add_argument("--out", type=Path, default=RESULTS / "ingest_floor.json")
    args = p.parse_args()
    base = Settings.from_env()
    ensure_jars(base.cache_dir)
    runs = []
    with tempfile.TemporaryDirectory(prefix="upriver-ingest-floor-") as tmp:
        kafka = LocalBroker(Path(tmp) / "kafka", base.cache_dir)
        settings = base.with_bootstrap(kafka.start())
        try:
            ensure_topics({**settings.kafka_config(), "log_level": 3}, settings.topics)
            assert kafka.pid is not None
            broker = Broker(kafka.pid)
            warm = openlineage_ingest(settings)
            for body in bodies(args.warmup, 10_000_000):
                warm.batch(body)
            warm.close()
            for i in range(args.runs):
                per = one_run(settings, broker, args.events, (i + 1) * 100_000_000)
                runs.append({"parts": per, "bounds": bounds(per)})
                print(json.dumps(runs[-1]), flush=True)
        finally:
            kafka.stop()
    names = list(runs[0]["parts"])
    fields = ("python_us", "broker_us", "wall_us")
    parts_p50 = {n: {f: median(r["parts"][n][f] for r in runs) for f in fields} for n in names}
    result = {
        "benchmark": "ingest_floor",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "events_per_run": args.events,
        "runs": len(runs),
        "batch_size": BATCH,
        "single_threads": THREADS,
        "event_bytes": len(json.dumps(ol_event(1, str(uuid.uuid4())))),
        "parts_p50": parts_p50,
        "bounds_p50": {k: median(r["bounds"][k] for r in runs) for k in runs[0]["bounds"]},
        "per_run": runs,
        "notes": (
            "OpenLineageIngest's parts alone in one process on a real local broker (the stack's topics), no HTTP; "
            "python_us: this process's CPU (every thread, librdkafka's included) per event, broker_us: the broker "
            "JVM's less its idle rate; *_two_cores: ingest processes on both cores with the broker's share and "
            "nothing else; *_us_for_target_two_cores: what an event may cost the ingest for the target on 2 cores"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("parts_p50", "bounds_p50")}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
