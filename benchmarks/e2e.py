"""End-to-end benchmark: stream N simulated events through the real local stack and record figures.

Writes benchmarks/results/e2e.json. A benchmark, not a test: it reports what it measured and judges
nothing. Run with `make bench` (EVENTS=N to change the size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.ceiling import bare_pipeline, producer_perf
from upriver.deploy.lag import LagMonitor
from upriver.local.broker import KAFKA_VERSION
from upriver.local.stack import LocalStack
from upriver.local.workload import run_workload
from upriver.settings import Settings

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kafka": KAFKA_VERSION,
        "chdb": version("chdb"),
        "faust_streaming": version("faust-streaming"),
        "confluent_kafka": version("confluent-kafka"),
    }


def bench_settings(home: Path, name: str, chdb_dir: Path | None = None, **overrides: Any) -> Settings:
    """A benchmark stack's settings: its own home, database and consumer groups (named `name` and the
    time), embedded ClickHouse in `chdb_dir` (default: home/chdb) unless CLICKHOUSE_URL says otherwise."""
    stamp = f"{name}_{time.time_ns()}"
    return replace(
        Settings.from_env(),
        home=home,
        clickhouse_url=os.environ.get("CLICKHOUSE_URL") or f"chdb://{(chdb_dir or home / 'chdb').resolve()}",
        clickhouse_database=stamp,
        processor_id=f"proc-{stamp}",
        sink_group=f"sink-{stamp}",
        **overrides,
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def wait_drained(settings: Settings, timeout: float = 300.0) -> float:
    """Seconds from now until every consumer group of the pipeline has read everything (lag 0 at two
    measurements in a row): after a burst's edges landed, the health agent may still be reading its run
    records. The next run starts on a quiet pipeline, and the wait is recorded (`drain_s`)."""
    monitor = LagMonitor.for_pipeline(settings)
    started = time.monotonic()
    quiet = 0
    try:
        while quiet < 2:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the pipeline did not drain in {timeout:.0f} s: {monitor.lag_now()}")
            quiet = quiet + 1 if not any(monitor.lag_now().values()) else 0
            time.sleep(0.5)
    finally:
        monitor.stop()
    return round(time.monotonic() - started, 1)


def measure_ceiling(settings: Settings) -> dict[str, Any]:
    """The same broker and chDB with no semantics (benchmarks/ceiling.py), right after Upriver's runs: the
    bare pipeline re-reads every message those runs sent, then Kafka's producer tool writes records of
    their mean size."""
    bare = bare_pipeline(settings.kafka_bootstrap, settings.topics.events, settings.clickhouse_url,
                         settings.clickhouse_database)  # fmt: skip
    return {"bare_pipeline": bare, "producer_perf": producer_perf(settings.kafka_bootstrap, settings.cache_dir,
                                                                  int(bare["mean_message_bytes"]))}  # fmt: skip


def with_ratios(ceiling: dict[str, Any], upriver_events_per_s: float) -> dict[str, Any]:
    bare = ceiling["bare_pipeline"]["messages_per_s"]
    produce = ceiling["producer_perf"]["records_per_s"]
    return {
        **ceiling,
        "upriver_events_per_s": upriver_events_per_s,
        "upriver_over_bare_pipeline": round(upriver_events_per_s / bare, 3),
        "upriver_over_producer_perf": round(upriver_events_per_s / produce, 3),
        "notes": "bare pipeline: one consumer -> fastavro -> chDB insert of edge rows, no dedup/state/validation; "
        "producer_perf: Kafka's ProducerPerformance, the mean e2e message size, acks=all, idempotent; "
        "both on the e2e runs' broker and chDB, after them",
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=3, help="runs (fresh seeds, one stack); medians reported")
    p.add_argument("--paced-events", type=int, default=10_000)
    p.add_argument("--paced-rate", type=float, default=1_000.0, help="messages/s of the paced run")
    p.add_argument("--out", type=Path, default=RESULTS / "e2e.json")
    p.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="skip the ceiling measurement")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="upriver-bench-") as tmp:
        settings = bench_settings(Path(tmp), "bench")
        with LocalStack(settings, api_port=0) as stack:
            stack.wait_worker_ready()
            assert stack.worker is not None and stack.broker is not None and stack.broker.pid is not None
            pids = {"worker": stack.worker.pid, "controller": os.getpid(), "broker": stack.broker.pid}
            reports, drains, cpus = [], [], []
            for i in range(args.repeat):
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                reports.append(run_workload(stack, args.events, seed=args.seed + i, timeout=900)[0])
                drains.append(wait_drained(stack.settings))
                cpus.append({name: round(1e6 * (cpu_seconds(pid) - before[name]) / args.events, 1)
                             for name, pid in pids.items()})  # fmt: skip
            paced, _ = run_workload(stack, args.paced_events, seed=args.seed + 100, timeout=900, rate=args.paced_rate)
            worker_peak = peak_rss_mib(stack.worker.pid) if stack.worker else -1.0
            ceiling = measure_ceiling(stack.settings) if args.ceiling else None
    runs = [r.to_json() for r in reports]
    for run, drain_s, cpu in zip(runs, drains, cpus, strict=True):
        run.pop("dlq_reasons", None)
        run["drain_s"] = drain_s
        run["cpu_us_per_event"] = cpu
    figures = {
        "benchmark": "e2e",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "events_per_run": args.events,
        "runs": len(runs),
        # Medians over the runs; counts are per run and must match in every run.
        "events_per_s": median(r["events_per_s"] for r in runs),
        "latency_ms": {q: median(r["latency_ms"][q] for r in runs) for q in ("p50", "p95", "p99")},
        "events_sent": runs[0]["events_sent"],
        "duplicates_sent": runs[0]["duplicates_sent"],
        "malformed_sent": runs[0]["malformed_sent"],
        "edges_expected": runs[0]["edges_expected"],
        "edges_stored": runs[0]["edges_stored"],
        "duplicate_edges_stored": max(r["duplicate_edges_stored"] for r in runs),
        "dlq_count": runs[0]["dlq_count"],
        "all_runs_exact": all(r["exact"] for r in runs),
        "per_run": runs,
        "drain_s": median(r["drain_s"] for r in runs),
        # CPU of each process over a burst and its drain, per event sent (controller: emitter, simulator, sink)
        "cpu_us_per_event": {name: median(c[name] for c in cpus) for name in pids},
        # Latency without a backlog: the emitter paced below the pipeline's capacity, on a drained pipeline.
        "paced": {
            "rate_msgs_per_s": args.paced_rate,
            "events_sent": paced.events_sent,
            "latency_ms": paced.latency_ms,
            "exact": paced.exact,
        },
        "ceiling": with_ratios(ceiling, median(r["events_per_s"] for r in runs)) if ceiling else None,
        "peak_rss_mib_controller": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mib_worker": worker_peak,
        "notes": "controller = this process (emitter, simulator, sink thread, chDB); worker = the faust "
        "processor process; the Kafka broker JVM (512 MiB heap) is not counted",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    keys = (
        "events_sent",
        "events_per_s",
        "latency_ms",
        "edges_stored",
        "edges_expected",
        "duplicate_edges_stored",
        "dlq_count",
        "paced",
        "ceiling",
    )
    print(json.dumps({k: figures[k] for k in keys}))
    print(f"wrote {args.out}")
    return 0 if figures["all_runs_exact"] and paced.exact else 1


if __name__ == "__main__":
    sys.exit(main())
