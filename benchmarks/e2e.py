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

from upriver.broker import KAFKA_VERSION
from upriver.settings import Settings
from upriver.stack import LocalStack
from upriver.workload import run_workload

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


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=RESULTS / "e2e.json")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="upriver-bench-") as tmp:
        settings = Settings.from_env()
        settings = replace(
            settings,
            home=Path(tmp),
            clickhouse_url=os.environ.get("CLICKHOUSE_URL") or f"chdb://{tmp}/chdb",
            clickhouse_database=f"bench_{int(time.time())}",
            processor_id=f"bench-proc-{int(time.time())}",
            sink_group=f"bench-sink-{int(time.time())}",
        )
        with LocalStack(settings, api_port=0) as stack:
            stack.wait_worker_ready()
            report, _ = run_workload(stack, args.events, seed=args.seed, timeout=900)
            worker_peak = peak_rss_mib(stack.worker.pid) if stack.worker else -1.0
    figures = {
        "benchmark": "e2e",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **report.to_json(),
        "peak_rss_mib_controller": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mib_worker": worker_peak,
        "notes": "controller = this process (emitter, simulator, sink thread, chDB); worker = the faust "
        "processor process; the Kafka broker JVM (512 MiB heap) is not counted",
    }
    figures.pop("dlq_reasons", None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: figures[k] for k in ("events_sent", "events_per_s", "latency_ms", "edges_stored",
                                              "edges_expected", "duplicate_edges_stored", "dlq_count")}))
    print(f"wrote {args.out}")
    return 0 if report.complete else 1


if __name__ == "__main__":
    sys.exit(main())
