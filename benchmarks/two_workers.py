"""The e2e workload on 8 partitions with one worker process, then with two in the same consumer group.

Writes benchmarks/results/two_workers.json: events/s of each run, exactness (every expected edge stored
once, no other) of each, with one worker and with two. Both phases run on one stack: the second worker
joins after the one-worker runs, and the group rebalances before the two-worker runs. On 2 cores this
shows the cost of coordination, not a speed-up.

The health agent is off in both phases: its state is a graph over every run, so it needs every partition
of the runs topic in one worker (docs/health.md, "Scaling"). Run with `make bench-two-workers`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any

from confluent_kafka.admin import AdminClient

from benchmarks.e2e import RESULTS, bench_settings, machine, peak_rss_mib, wait_drained
from upriver.deploy.kafka import assigned_members
from upriver.local.stack import LocalStack, free_port
from upriver.local.workload import run_workload


def scrape(port: int, name: str) -> int:
    """A counter's value from a worker's Prometheus /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
    raise KeyError(f"{name} not in the worker's /metrics")


def run_phase(stack: LocalStack, events: int, seeds: list[int]) -> list[dict[str, Any]]:
    out = []
    for seed in seeds:
        report, _ = run_workload(stack, events, seed=seed, timeout=900)
        run = report.to_json()
        run.pop("dlq_reasons", None)
        run["drain_s"] = wait_drained(stack.settings)
        out.append(run)
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "events_per_s": median(r["events_per_s"] for r in runs),
        "latency_ms": {q: median(r["latency_ms"][q] for r in runs) for q in ("p50", "p95", "p99")},
        "all_runs_exact": all(r["exact"] for r in runs),
        "duplicate_edges_stored": max(r["duplicate_edges_stored"] for r in runs),
        "per_run": runs,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--seed", type=int, default=300)
    p.add_argument("--out", type=Path, default=RESULTS / "two_workers.json")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="upriver-bench-") as tmp:
        base = bench_settings(Path(tmp), "two", health_enabled=False)
        settings = replace(base, topics=replace(base.topics, partitions=args.partitions))
        with LocalStack(settings, api_port=0) as stack:
            stack.wait_worker_ready()
            one = run_phase(stack, args.events, [args.seed + i for i in range(args.repeat)])
            assert stack.worker is not None
            admin = AdminClient({**stack.settings.kafka_config(), "log_level": 3})
            second_port = free_port()
            second_home = Path(tmp) / "worker2"  # its own state dir and metrics port, the same group
            second = stack.spawn_worker(second_home / "worker.log", UPRIVER_HOME=str(second_home),
                                        UPRIVER_METRICS_PORT=str(second_port))  # fmt: skip
            try:
                started = time.monotonic()
                while assigned_members(admin, stack.settings.processor_id) < 2:
                    if second.poll() is not None:
                        raise RuntimeError(f"the second worker exited with {second.returncode}; see {tmp}/worker2")
                    if time.monotonic() - started > 180:
                        raise TimeoutError("the group did not settle with two members in 180 s")
                    time.sleep(0.5)
                rebalance_s = round(time.monotonic() - started, 1)
                two = run_phase(stack, args.events, [args.seed + 100 + i for i in range(args.repeat)])
                peaks = [peak_rss_mib(stack.worker.pid), peak_rss_mib(second.pid)]
                second_dropped = scrape(second_port, "upriver_processor_duplicates_dropped_total")
            finally:
                second.terminate()
                try:
                    second.wait(30)
                except subprocess.TimeoutExpired:
                    second.kill()
    figures = {
        "benchmark": "two_workers",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "partitions": args.partitions,
        "events_per_run": args.events,
        "health": "off in both phases (the health agent needs every runs partition in one worker)",
        "one_worker": summary(one),
        "two_workers": {
            **summary(two),
            "join_and_rebalance_s": rebalance_s,
            "peak_rss_mib_workers": peaks,
            # per_run duplicates_dropped reads the first worker's metric only; the second's total over the phase:
            "second_worker_duplicates_dropped": second_dropped,
            "duplicates_sent": sum(r["duplicates_sent"] for r in two),
            "duplicates_dropped_both_workers": sum(r["duplicates_dropped"] for r in two) + second_dropped,
        },
    }
    figures["two_over_one"] = round(figures["two_workers"]["events_per_s"] / figures["one_worker"]["events_per_s"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: figures[k] for k in ("two_over_one",)} | {
        k: {kk: figures[k][kk] for kk in ("events_per_s", "all_runs_exact")} for k in ("one_worker", "two_workers")
    }))  # fmt: skip
    print(f"wrote {args.out}")
    return 0 if figures["one_worker"]["all_runs_exact"] and figures["two_workers"]["all_runs_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
