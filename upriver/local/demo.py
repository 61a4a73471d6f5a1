"""`upriver demo`: start the local stack, stream a realistic workload, print what arrived, stop.

Prints the summary and the upstream lineage tree of the simulated production model's deployment.
"""

from __future__ import annotations

import socket
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from upriver.local.stack import LocalStack
from upriver.local.workload import Report, run_workload
from upriver.readside.lineage import LineageReader, render_tree
from upriver.settings import Settings, redact_url


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


def where_to_look(s: Settings, log_dir: Path, deployment: str) -> str:
    """The demo's closing pointers; the ClickHouse URL's password shows as `***`."""
    metrics = s.metrics_port and f"http://127.0.0.1:{s.metrics_port}/metrics"
    return (
        f"\nWhere to look:\n  ClickHouse data   {redact_url(s.clickhouse_url)} (database {s.clickhouse_database}; "
        "tables edges, runs, nodes, dead_letters, alerts, drift_links, health)\n"
        f"  metrics           {metrics} (worker), /metrics on the read API (sink)\n"
        f"  logs              {log_dir}\n"
        "  run it yourself   `upriver up`, then `upriver simulate --events 10000` and\n"
        f"                    `upriver lineage upstream {deployment}`, `upriver alerts --open`"
    )


# The demo streams a burst of a few seconds in wall-clock time: health settings on that scale.
DEMO_RULES = """
[defaults]
lateness = "10s"
run_timeout = "30s"
upstream_grace = "5s"
unused_after = "1h"
model_lag = "5s"
"""


def health_summary(reader: LineageReader) -> str:
    namespaces = reader.health.health()["namespaces"]
    total = Counter[str]()
    for ns in namespaces:
        for metric in ("artifacts", "fresh", "late", "stale", "unknown"):
            total[metric] += int(ns.get(metric, 0))
    alerts = reader.health.alerts(open_only=True, limit=100_000)
    by_kind = Counter(a["kind"] for a in alerts)
    lines = [
        "Lineage health (upriver health · upriver alerts --open)",
        f"  artifacts              {total['artifacts']:>9,}  in {len(namespaces)} namespaces: "
        f"{total['fresh']:,} fresh, {total['late'] + total['stale']:,} late or stale, "
        f"{total['unknown']:,} without an SLA yet",
        f"  open alerts            {len(alerts):>9,}  "
        + (", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items())) or "none"),
    ]
    drift = next((a for a in alerts if a["kind"] == "DRIFT_IMPACT"), None)
    if drift is not None:
        lines.append(f"  e.g. drift reaches     {drift['subject']} via {' -> '.join(drift['path'])}")
    return "\n".join(lines)


def _wait_health(stack: LocalStack, until_ms: int, timeout: float = 90.0) -> None:
    """Until a health timer pass settled past `until_ms` is queryable in ClickHouse."""
    assert stack.storage is not None
    client, db = stack.storage.read_client, stack.storage.database
    sql = f"SELECT toUnixTimestamp64Milli(max(measured_at)), count() FROM {db}.health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest, rows = client.query(sql).result_rows[0]
        if rows and int(latest) >= until_ms:
            time.sleep(1.0)  # the alerts published with that pass
            return
        time.sleep(0.5)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def run_demo(settings: Settings, events: int, seed: int, interactive: bool | None = None) -> int:
    """`interactive` (default: stdin and stdout are terminals) keeps the stack and its UI up until Ctrl-C."""
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if settings.health_enabled and not settings.health_rules:
        settings.home.mkdir(parents=True, exist_ok=True)
        rules = settings.home / "health-rules.demo.toml"
        rules.write_text(DEMO_RULES)
        settings = replace(settings, health_rules=str(rules.resolve()), health_interval_s=1.0)
    started = time.monotonic()
    print("Starting the local stack (Kafka broker, faust worker, ClickHouse sink)...", flush=True)
    port = settings.api_port if _port_free(settings.api_host, settings.api_port) else 0
    with LocalStack(settings, api_port=port) as stack:
        stack.wait_worker_ready()
        print(f"Stack up in {time.monotonic() - started:.1f}s; streaming {events:,} simulated events...", flush=True)
        report, truth = run_workload(stack, events, seed=seed)
        print()
        print(summary(report))
        if stack.storage is not None:
            graph = stack.storage.reader().upstream(truth.production_deployment, depth=10)
            print(f"\nUpstream lineage of the production deployment {truth.production_deployment}:")
            print(render_tree(graph))
            if stack.settings.health_enabled:
                print("\nWaiting for the health processor to settle (lateness 10 s)...", flush=True)
                _wait_health(stack, int(time.time() * 1000))  # every event of the workload settled
                print(health_summary(stack.storage.reader()))
        print(where_to_look(stack.settings, stack.log_dir, truth.production_deployment))
        if stack.api is not None:
            print(f"\nWeb UI (explorer, impact, health): {stack.api.url}/#/explorer?node={truth.production_deployment}")
        if interactive:
            print("Serving until Ctrl-C ...", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        print("\nStopping the stack...", flush=True)
    return 0 if report.complete and report.missing_edges == 0 else 1
