"""Marquez's API on Upriver at 1M edges: `GET /api/v1/lineage` and `GET /api/v1/namespaces/{ns}/jobs`.

Builds the same simulator graph as benchmarks/graph.py (no Kafka: the processor's own run merge and edge
derivation into a fresh chDB database), starts the API server on it and times the two routes Marquez's web UI
and `marquez-python` lean on hardest, over HTTP with one keep-alive connection (p50/p95 over samples):

- `/api/v1/lineage?nodeId=dataset:<ns>:<name>&depth=D` for D in 2, 5, 10, 20, from leaf, mid and hub datasets
  (Marquez's traversal: through jobs, both directions; the answer's vertex count is recorded with each figure);
- `/api/v1/namespaces/{ns}/jobs?limit=100&offset=O`: the first page and pages deep into the biggest namespaces.

    python -m benchmarks.marquez_api --edges 1000000      # or: make bench-marquez
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.graph import _events, _pct
from benchmarks.rest import Api
from schemas import identity
from sinks.clickhouse import connect
from sinks.migrations import apply_migrations
from sinks.writer import ClickHouseWriter
from upriver.http.server import ApiServer
from upriver.local.bulk import load_stream
from upriver.readside.lineage import LineageReader

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "marquez_api.json"
DEPTHS = (2, 5, 10, 20)


def _figures(times: list[float], sizes: list[int], statuses: list[int]) -> dict[str, Any]:
    ms = [t * 1000 for t in times]
    return {
        "samples": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(_pct(ms, 0.95), 2),
        "max_ms": round(max(ms), 2),
        "median_vertices": statistics.median(sizes),
        "max_vertices": max(sizes),
        "non_200": sum(1 for s in statuses if s != 200),
    }


def _datasets(reader: LineageReader) -> dict[str, list[str]]:
    """Leaf, mid and hub datasets of Marquez's graph, 20 each, as Marquez node ids. Marquez's lineage walks the
    jobs' current inputs and outputs, so a node no job currently names (a chunk of a document re-chunked since,
    an artifact only derived from another) is a lone vertex there; the sample is taken from the datasets that
    jobs' current versions name, ranked by how many jobs name each: leaf the fewest, mid around the median, hub
    the most (ties broken by a hash of the id, so the sample is fixed for a seed)."""
    touched: dict[str, int] = {}
    for job in reader.jobgraph.jobs(reader.aliases(), None).values():
        for node in job.inputs | job.outputs:
            touched[node] = touched.get(node, 0) + 1
    ranked = sorted(touched, key=lambda n: (touched[n], hashlib.sha1(n.encode()).hexdigest()))
    middle = max(len(ranked) // 2 - 10, 0)
    roles = (("leaf", ranked[:20]), ("mid", ranked[middle : middle + 20]), ("hub", ranked[-20:]))
    return {k: [identity.marquez_id(identity.parse(n)) for n in v] for k, v in roles}


def _lineage(api: Api, samples: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for depth in DEPTHS:
        for role, ids in samples.items():
            times, sizes, statuses = [], [], []
            for node in ids:
                took, status, body = api.get("/api/v1/lineage", nodeId=node, depth=depth)
                times.append(took)
                statuses.append(status)
                sizes.append(len(body.get("graph", [])) if status == 200 else 0)
            out[f"{role}_depth{depth}"] = _figures(times, sizes, statuses)
            print(f"lineage {role} depth {depth}: {out[f'{role}_depth{depth}']}", file=sys.stderr, flush=True)
    return out


def _jobs(api: Api, client: Any, db: str) -> dict[str, Any]:
    rows = client.query(
        f"SELECT job_namespace, uniqExact(job_name) AS n FROM `{db}`.runs "
        "GROUP BY job_namespace ORDER BY n DESC LIMIT 5"
    ).result_rows
    times, sizes, statuses, pages = [], [], [], []
    for ns, count in rows:
        for offset in sorted({0, int(count) // 2, max(int(count) - 100, 0)}):
            for _ in range(5):
                took, status, body = api.get(f"/api/v1/namespaces/{quote(str(ns), safe='')}/jobs", limit=100,
                                             offset=offset)  # fmt: skip
                times.append(took)
                statuses.append(status)
                sizes.append(len(body.get("jobs", [])) if status == 200 else 0)
            pages.append({"namespace": ns, "jobs": int(count), "offset": offset})
    return {**_figures(times, sizes, statuses), "pages": pages}


def bench(target_edges: int, workdir: Path, seed: int) -> dict[str, Any]:
    db = f"marquez_{target_edges}"
    client = connect(f"chdb://{workdir}")
    client.command(f"DROP DATABASE IF EXISTS `{db}`")
    apply_migrations(client, db)
    events, _ = _events(target_edges, seed)
    started = time.perf_counter()
    stats = load_stream(ClickHouseWriter(client, db), events, derived_at=int(time.time() * 1000))
    build_s = time.perf_counter() - started
    for table in ("edges", "nodes", "runs"):
        client.command(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
    edge_rows = int(client.query(f"SELECT count() FROM `{db}`.edges").result_rows[0][0])
    server = ApiServer(LineageReader(client, db), "127.0.0.1", 0).start()
    try:
        api = Api(server.url)
        samples = _datasets(LineageReader(client, db))
        out: dict[str, Any] = {"target_edges": target_edges, "edge_rows": edge_rows, "events": stats.events,
                               "runs": stats.runs, "build_s": round(build_s, 1)}  # fmt: skip
        out["namespace_jobs"] = _jobs(api, client, db)
        print(f"namespace jobs: {out['namespace_jobs']}", file=sys.stderr, flush=True)
        out["lineage"] = _lineage(api, samples)
    finally:
        server.stop()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--edges", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=ROOT / ".cache" / "bench-marquez")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    run = bench(args.edges, args.workdir, args.seed)
    doc = {
        "benchmark": "marquez_api",
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "measured": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        },
        "note": "one process: the API server (http.server) over chDB; the client on the same box, one keep-alive "
        "connection; lineage samples: 20 leaf, 20 mid and 20 hub datasets at each depth, ranked by how many "
        "jobs name them (benchmarks/marquez_api.py _datasets)",
        "runs": [run],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
