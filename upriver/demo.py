"""`upriver demo`: start the local stack, stream a realistic workload, print what arrived, stop.

Prints the summary and the upstream lineage tree of the simulated production model's deployment.
"""

from __future__ import annotations

import time

from upriver.lineage import render_tree
from upriver.settings import Settings
from upriver.stack import LocalStack
from upriver.workload import Report, run_workload


def summary(report: Report) -> str:
    lat = report.latency_ms
    lines = [
        "Upriver demo — what went through the pipe",
        f"  events sent            {report.events_sent:>9,}  (+{report.duplicates_sent:,} duplicates, "
        f"+{report.malformed_sent:,} malformed)",
        f"  duplicates dropped     {report.duplicates_dropped:>9,}",
        f"  edges stored           {report.edges_stored:>9,}  of {report.edges_expected:,} expected "
        f"({report.missing_edges} missing, {report.unexpected_edges} unexpected, "
        f"{report.duplicate_edges_stored} duplicate rows)",
        f"  dead-lettered          {report.dlq_count:>9,}",
        f"  throughput             {report.events_per_s:>9,.0f}  events/s (first send -> last row queryable)",
        f"  end-to-end latency     p50 {lat['p50']:.0f} ms · p95 {lat['p95']:.0f} ms · p99 {lat['p99']:.0f} ms"
        "  (event time -> edges queryable)",
    ]
    if report.dlq_reasons:
        lines.append("  dead-letter reasons:")
        lines += [f"    {n:>5} x {kind}: {reason[:90]}" for kind, reason, n in report.dlq_reasons[:5]]
    if not report.complete:
        lines.append("  WARNING: not everything arrived before the time-out (see the logs)")
    return "\n".join(lines)


def run_demo(settings: Settings, events: int, seed: int) -> int:
    started = time.monotonic()
    print("Starting the local stack (Kafka broker, faust worker, ClickHouse sink)...", flush=True)
    with LocalStack(settings, api_port=0) as stack:
        stack.wait_worker_ready()
        print(f"Stack up in {time.monotonic() - started:.1f}s; streaming {events:,} simulated events...", flush=True)
        report, truth = run_workload(stack, events, seed=seed)
        print()
        print(summary(report))
        if stack.storage is not None:
            graph = stack.storage.reader().upstream(truth.production_deployment, depth=10)
            print(f"\nUpstream lineage of the production deployment {truth.production_deployment}:")
            print(render_tree(graph))
        s = stack.settings
        print(
            f"\nWhere to look:\n  ClickHouse data   {s.clickhouse_url} (database {s.clickhouse_database}; "
            "tables edges, runs, nodes, dead_letters)\n"
            f"  logs              {stack.log_dir}\n"
            "  run it yourself   `upriver up`, then `upriver simulate --events 10000` and\n"
            f"                    `upriver lineage upstream {truth.production_deployment}`"
        )
        print("\nStopping the stack...", flush=True)
    return 0 if report.complete and report.missing_edges == 0 else 1
