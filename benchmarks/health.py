"""Health processor benchmark: pipeline events/s with the health processor enabled vs disabled (the real
local stack, medians of repeated runs), and the engine in process at ~1M artifacts: facts applied per
second and the cost of one timer pass (sweep of every artifact + the namespace metrics).

Writes benchmarks/results/health.json. Run with `make bench-health`.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.e2e import bench_settings, machine
from processors.health.config import HealthConfig
from processors.health.engine import HealthEngine
from processors.worker.app import PASS_CHUNK
from upriver.local.stack import LocalStack
from upriver.local.workload import run_workload

RESULTS = Path(__file__).parent / "results"
OUTPUTS_PER_RUN = 10


def _art(kind: str, ns: str, name: str, version: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "namespace": ns, "name": name, "version": version, "facets": None}


def engine_at_scale(artifacts: int, passes: int) -> dict[str, Any]:
    """~`artifacts` nodes: runs that each read a shared source and write 10 artifacts, every artifact
    written twice (so each has an update cadence), over 50 namespaces and a few kinds."""
    engine = HealthEngine(HealthConfig(lateness_ms=0, learn_min_updates=2))
    kinds = ("DATASET", "FEATURE", "EMBEDDING", "MODEL", "CHUNK")
    runs = artifacts // OUTPUTS_PER_RUN
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    applied = 0
    for rnd in range(2):
        for i in range(runs):
            ns = f"ns{i % 50:02d}"
            t = (rnd * runs + i) * 10
            engine.add_run(
                {
                    "run_id": f"r{rnd}-{i}",
                    "revision": 2,
                    "job_namespace": "bench",
                    "job_name": f"job{i % 1000}",
                    "job_kind": "TRANSFORM",
                    "status": "COMPLETE",
                    "started_at": t,
                    "ended_at": t + 5,
                    "inputs": [_art("DATASET", ns, f"source{i % 5000}")],
                    "outputs": [
                        _art(kinds[j % len(kinds)], ns, f"a{i}_{j}", f"v{rnd}") for j in range(OUTPUTS_PER_RUN)
                    ],
                    "facets": "{}",
                }
            )
            applied += 1
            if i % 1000 == 0:
                engine.advance(t)
    engine.advance(2 * runs * 10 + 10)
    build_s = time.perf_counter() - started
    engine.take()
    engine.take_dirty()
    pass_s = []
    for k in range(passes):
        engine.advance(2 * runs * 10 + 10 + k * 3_600_000)  # time moves on: artifacts go stale
        gc.collect()
        t0 = time.perf_counter()
        for _ in engine.timer_pass(chunk=PASS_CHUNK):  # what the worker's timer runs, minus the awaits
            pass
        figures = engine.figures
        pass_s.append(time.perf_counter() - t0)
    return {
        "artifacts": len(engine.nodes),
        "runs_applied": applied,
        "runs_per_s": round(applied / build_s, 1),
        "artifact_writes_per_s": round(applied * OUTPUTS_PER_RUN / build_s, 1),
        "timer_pass_s": {"median": round(median(pass_s), 3), "all": [round(x, 3) for x in pass_s]},
        "open_alerts_after": len(engine.alerts),
        "namespace_metrics": len(figures),
        "rss_growth_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1),
    }


def pipeline(health: bool, events: int, repeat: int, chdb_dir: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="upriver-bench-health-") as tmp:
        # chDB: one directory per process, so both runs share it (separate databases)
        settings = bench_settings(Path(tmp), f"bench_health_{int(health)}", Path(chdb_dir), health_enabled=health)
        with LocalStack(settings, api_port=0) as stack:
            stack.wait_worker_ready()
            reports = [run_workload(stack, events, seed=31 + i, timeout=900)[0] for i in range(repeat)]
            runs_read = stack.worker_metrics().get("upriver_health_runs_total", 0.0)
    return {
        "health_enabled": health,
        "events_per_s": median(r.events_per_s for r in reports),
        "all_events_per_s": [r.events_per_s for r in reports],
        "latency_ms_p50": median(r.latency_ms["p50"] for r in reports),
        "exact": all(r.exact for r in reports),
        "health_runs_read": runs_read,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--artifacts", type=int, default=1_000_000)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "health.json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="upriver-bench-chdb-") as chdb_dir:
        on = pipeline(True, args.events, args.repeat, chdb_dir)
        off = pipeline(False, args.events, args.repeat, chdb_dir)
    scale = engine_at_scale(args.artifacts, args.passes)
    figures = {
        "benchmark": "health",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "pipeline": {
            "events_per_run": args.events,
            "runs": args.repeat,
            "health_enabled": on,
            "health_disabled": off,
            "events_per_s_ratio": round(on["events_per_s"] / off["events_per_s"], 3),
        },
        "engine": scale,
        "notes": "pipeline: the e2e workload through the local stack (one faust worker runs the processor and, "
        "when enabled, the health processor on 2 cores); engine: processors.health.engine in process, no Kafka",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({"pipeline": figures["pipeline"], "engine": scale}, indent=2))
    print(f"wrote {args.out}")
    return 0 if on["exact"] and off["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
