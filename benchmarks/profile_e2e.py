"""Where the CPU goes in the end-to-end run: one burst of the e2e workload through the local stack with py-spy
sampling every Python process of it, and the CPU seconds of each process (the broker's JVM too).

The stack's processes: the worker (faust: lineage processor, health processor, OpenLineage agent) is a child
process; the controller (this process) runs the emitter and simulator while it sends, then the sink thread
(Kafka consumer, Avro decode, chDB inserts) and the lag monitor; the broker is a JVM. py-spy (PyPI, a sampling
profiler that attaches to a running process) records each Python process's stacks; this script folds them
into self time per function and inclusive time per area (faust and its Kafka client, confluent-kafka, fastavro,
chDB, Upriver's own packages ...), and writes benchmarks/results/profile.json. A benchmark, not a test.

    python -m benchmarks.profile_e2e --events 50000      # or: make bench-profile
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.e2e import bench_settings, cpu_seconds, machine, peak_rss_mib
from upriver.local.stack import LocalStack
from upriver.local.workload import run_workload

RESULTS = Path(__file__).parent / "results"

# an area is the first of these a frame's file path holds, read from the leaf up (see `_area`)
AREAS: tuple[tuple[str, str], ...] = (
    ("/faust/", "faust"),
    ("/mode/", "faust (mode)"),
    ("/aiokafka/", "aiokafka (faust's Kafka client)"),
    ("/confluent_kafka/", "confluent-kafka"),
    ("/fastavro/", "fastavro"),
    ("/chdb/", "chDB"),
    ("/clickhouse_connect/", "clickhouse-connect"),
    ("/prometheus_client/", "prometheus-client"),
    ("/processors/lineage/", "upriver processors/lineage"),
    ("/processors/health/", "upriver processors/health"),
    ("/processors/worker/", "upriver processors/worker"),
    ("/processors/", "upriver processors"),
    ("/sinks/", "upriver sinks"),
    ("/schemas/", "upriver schemas"),
    ("/producers/", "upriver producers"),
    ("/upriver/", "upriver (stack, read side, API)"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
)


def _area(path: str) -> str:
    """py-spy names files relative to their import root (`faust/streams.py`, `processors/lineage/handler.py`)."""
    rooted = "/" + path.lstrip("/")
    return next((name for key, name in AREAS if key in rooted), "other")


def _frame_path(frame: str) -> str:
    """The file of a py-spy raw frame `function (path:line)`."""
    inner = frame.rpartition(" (")[2].rstrip(")")
    return inner.rpartition(":")[0] or inner


def _function(frame: str) -> str:
    """`function (path:line)` -> `function (path)`: time per function, not per line."""
    head, sep, inner = frame.rpartition(" (")
    return f"{head} ({inner.rstrip(')').rpartition(':')[0] or inner.rstrip(')')})" if sep else frame


def fold(raw: str) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks -> samples, self time per function (top 30) and per area (the leaf's
    area: where the CPU was spent), and inclusive time per area (any frame of the stack in it)."""
    own: Counter[str] = Counter()
    leaf_area: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    inclusive_fn: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        if frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]
        if not frames:
            continue
        total += n
        leaf = frames[-1]
        own[_function(leaf)] += n
        leaf_area[_area(_frame_path(leaf))] += n
        for area in {_area(_frame_path(f)) for f in frames}:
            inclusive[area] += n
        for fn in {_function(f) for f in frames}:
            inclusive_fn[fn] += n

    def share(c: Counter[str], top: int) -> list[dict[str, Any]]:
        return [{"name": k, "samples": v, "percent": round(100 * v / total, 1)} for k, v in c.most_common(top)]

    return {
        "samples": total,
        "self_by_area": share(leaf_area, 30),
        "inclusive_by_area": share(inclusive, 30),
        "self_by_function": share(own, 30),
        "inclusive_by_function": share(inclusive_fn, 40),
    }


class Recorder:
    """py-spy recording one process into a raw file until `stop`."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        self.out = out
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), "--nonblocking",
             "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            return {"error": err.decode(errors="replace")[-500:]}
        return fold(self.out.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--out", type=Path, default=RESULTS / "profile.json")
    p.add_argument("--raw-dir", type=Path, default=RESULTS.parents[1] / ".cache" / "profile",
                   help="where py-spy's raw stacks are kept (to fold again with --fold)")
    p.add_argument("--fold", type=Path, help="print the folding of one raw file and exit")
    args = p.parse_args(argv)
    if args.fold:
        print(json.dumps(fold(args.fold.read_text()), indent=2))
        return 0
    args.raw_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="upriver-profile-") as tmp:
        settings = bench_settings(Path(tmp), "profile")
        with LocalStack(settings, api_port=0) as stack:
            stack.wait_worker_ready()
            assert stack.worker is not None and stack.broker is not None
            pids = {"worker": stack.worker.pid, "controller": os.getpid()}
            if stack.broker.pid is not None:
                pids["broker (JVM)"] = stack.broker.pid
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            recorders = {
                "worker": Recorder(pids["worker"], args.raw_dir / "worker.txt", args.rate),
                "controller": Recorder(pids["controller"], args.raw_dir / "controller.txt", args.rate),
            }
            time.sleep(1.0)  # py-spy attached
            started = time.perf_counter()
            report, _ = run_workload(stack, args.events, seed=args.seed, timeout=900)
            wall = time.perf_counter() - started
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
            profiles = {name: r.stop() for name, r in recorders.items()}
            worker_peak = peak_rss_mib(pids["worker"])
    run = report.to_json()
    run.pop("dlq_reasons", None)
    events = run["events_sent"]
    processes = {
        name: {
            "cpu_s": round(after[name] - before[name], 2),
            "cpu_us_per_event": round(1e6 * (after[name] - before[name]) / max(events, 1), 1),
            "cpu_share_of_wall": round((after[name] - before[name]) / wall, 2),
            **({"profile": profiles[name]} if name in profiles else {}),
        }
        for name in pids
    }
    doc = {
        "benchmark": "profile_e2e",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "events": events,
        "wall_s": round(wall, 1),
        "events_per_s": run["events_per_s"],
        "exact": run["exact"],
        "peak_rss_mib_worker": worker_peak,
        "processes": processes,
        "notes": "one burst of the e2e workload (benchmarks/e2e.py) with py-spy sampling the worker and the "
        f"controller at {args.rate} Hz (the sampling itself costs a few per cent); cpu_s from /proc/<pid>/stat over "
        "the burst; the controller emits first, then sinks. self_by_area: the area of the sampled leaf frame; "
        "inclusive_by_area: any frame of the stack. Idle threads are not sampled.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    summary = {n: {k: v for k, v in p.items() if k != "profile"} for n, p in processes.items()}
    print(json.dumps({"events_per_s": doc["events_per_s"], "exact": doc["exact"], "processes": summary}, indent=2))
    for name, prof in profiles.items():
        print(name, json.dumps(prof.get("self_by_area", prof)[:8]))
    print(f"wrote {args.out}")
    return 0 if doc["exact"] else 1


if __name__ == "__main__":
    threading.current_thread().name = "profile-main"
    raise SystemExit(main())
