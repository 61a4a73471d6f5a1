"""OpenLineage HTTP ingest benchmark: POST /api/v1/lineage (one event a request, keep-alive connections)
with 1, 4 and 16 concurrent clients, and POST /api/v1/lineage/batch (100 events a request), against the
local stack. Every 201 means the event is in Kafka (acks=all). Figures: events/s and request latency
percentiles, medians of repeated runs. Writes benchmarks/results/openlineage.json (`make bench-openlineage`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from statistics import median, quantiles
from typing import Any

from benchmarks.e2e import bench_settings, machine
from upriver.local.stack import LocalStack, free_port

RESULTS = Path(__file__).parent / "results"


def ol_event(i: int, run_id: str) -> dict[str, Any]:
    """A realistic event: a Spark-like job reading two tables and writing one, schema and column lineage."""
    fields = [{"name": f"c{j}", "type": "STRING"} for j in range(8)]
    return {
        "eventTime": "2026-12-01T10:00:00.000Z",
        "eventType": "COMPLETE" if i % 2 else "START",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {"processing_engine": {"name": "spark", "version": "3.5.1"}}},
        "job": {"namespace": "spark-bench", "name": f"job_{i % 500}"},
        "inputs": [
            {"namespace": "hive://metastore", "name": f"db.src_{i % 997}", "facets": {"schema": {"fields": fields}}},
            {"namespace": "hive://metastore", "name": f"db.dim_{i % 13}"},
        ],
        "outputs": [
            {
                "namespace": "hive://metastore",
                "name": f"db.out_{i % 500}",
                "facets": {
                    "schema": {"fields": fields},
                    "columnLineage": {
                        "fields": {
                            "c0": {
                                "inputFields": [
                                    {"namespace": "hive://metastore", "name": f"db.src_{i % 997}", "field": "c0"}
                                ]
                            }
                        }
                    },
                },
            }
        ],
    }


def _client(host: str, port: int, bodies: list[bytes], path: str, token: str, latencies: list[float],
            errors: list[int]) -> None:  # fmt: skip
    conn = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for body in bodies:
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status not in (200, 201):
            errors.append(resp.status)
    conn.close()


def run_level(url: str, clients: int, bodies: list[bytes], path: str, events_per_body: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors: list[int] = []
    share = [bodies[i::clients] for i in range(clients)]
    threads = [
        threading.Thread(target=_client, args=(host, int(port), part, path, "", latencies, errors)) for part in share
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cuts = quantiles(latencies, n=100)
    return {
        "events_per_s": round(len(bodies) * events_per_body / elapsed, 1),
        "requests": len(bodies),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "errors": len(errors),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=4000, help="events per run and concurrency level")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "openlineage.json")
    args = p.parse_args()
    levels: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="upriver-bench-ol-") as tmp:
        settings = bench_settings(Path(tmp), "bench_ol")
        with LocalStack(settings, api_port=free_port()) as stack:
            stack.wait_worker_ready()
            assert stack.api is not None
            for rnd in range(args.repeat):
                for clients in args.clients:
                    run_ids = [str(uuid.uuid4()) for _ in range(args.events // 2)]
                    bodies = [json.dumps(ol_event(i, run_ids[i // 2])).encode() for i in range(args.events)]
                    result = run_level(stack.api.url, clients, bodies, "/api/v1/lineage", 1)
                    levels.setdefault(f"single_{clients}_clients", []).append(result)
                    print(rnd, clients, result, flush=True)
                run_ids = [str(uuid.uuid4()) for _ in range(args.events // 2)]
                events = [ol_event(i, run_ids[i // 2]) for i in range(args.events)]
                batches = [json.dumps(events[i : i + 100]).encode() for i in range(0, len(events), 100)]
                result = run_level(stack.api.url, 4, batches, "/api/v1/lineage/batch", 100)
                levels.setdefault("batch_100_4_clients", []).append(result)
                print(rnd, "batch", result, flush=True)
    figures = {
        "benchmark": "openlineage_http",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "events_per_run": args.events,
        "runs": args.repeat,
        "event_bytes": len(json.dumps(ol_event(1, str(uuid.uuid4())))),
        "levels": {
            name: {
                "events_per_s": median(r["events_per_s"] for r in rs),
                "p50_ms": median(r["p50_ms"] for r in rs),
                "p99_ms": median(r["p99_ms"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
                "per_run": rs,
            }
            for name, rs in levels.items()
        },
        "notes": "the stack's HTTP server (stdlib ThreadingHTTPServer) in the process that also runs the sink and "
        "chDB; broker, worker and clients on the same 2 cores; a 2xx is sent after Kafka acknowledged (acks=all)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: {m: v[m] for m in ("events_per_s", "p50_ms", "p99_ms", "errors")}
                      for k, v in figures["levels"].items()}, indent=2))  # fmt: skip
    print(f"wrote {args.out}")
    return 0 if all(v["errors"] == 0 for v in figures["levels"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
