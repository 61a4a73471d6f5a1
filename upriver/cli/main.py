"""`upriver` command line: run the stack or one deployable, emit and simulate events, query lineage.

Reads the environment once (Settings.from_env) here, at the entry point; commands stay thin.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from upriver.settings import Settings, redact_url

log = logging.getLogger("upriver")

COMMANDS = ("up", "demo", "worker", "sink", "emit", "simulate", "lineage", "kafka")


def _bootstrap(settings: Settings) -> Settings:
    """Settings with a Kafka to talk to: the configured one, else the running local stack's."""
    if settings.kafka_bootstrap:
        return settings
    from upriver.local.stack import read_state

    state = read_state(settings.home)
    if state is None:
        raise SystemExit("no Kafka to talk to: set KAFKA_BOOTSTRAP_SERVERS or start the local stack with `upriver up`")
    return settings.with_bootstrap(state["bootstrap"])


def up_banner(s: Settings, api_url: str, log_dir: Path) -> str:
    """What `upriver up` prints once the stack is up; the ClickHouse URL's password shows as `***`."""
    return (
        f"Upriver is up.\n  Kafka:      {s.kafka_bootstrap}\n  ClickHouse: {redact_url(s.clickhouse_url)} "
        f"(database {s.clickhouse_database})\n  API:        {api_url or '-'}\n"
        f"  Metrics:    http://127.0.0.1:{s.metrics_port}/metrics (worker)\n"
        f"  Logs:       {log_dir}\nSend events with `upriver simulate` or `upriver emit FILE`; "
        "Ctrl-C stops everything."
    )


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.local.stack import LocalStack

    stack = LocalStack(settings, worker_log_level=args.worker_log_level)
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.start()
    try:
        stack.wait_worker_ready()
        print(up_banner(stack.settings, stack.api.url if stack.api else "", stack.log_dir), flush=True)
        while not stopping:
            # a dead stage (sink, worker, lag monitor, broker) is not restarted: exit with its reason
            failed = stack.failures()
            if failed:
                for f in failed:
                    print(f"upriver up: stage {f.stage} stopped: {f.reason} (log: {f.log})", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.local.demo import run_demo

    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000_007
    return run_demo(settings, events=args.events, seed=seed)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from processors.worker.app import run_worker
    from upriver.deploy.components import processor_config

    run_worker(processor_config(_bootstrap(settings)), loglevel=args.log_level)
    return 0


def cmd_sink(settings: Settings, args: argparse.Namespace) -> int:
    """The sink and the read API in one process (with chDB only one process may open the database)."""
    import threading

    from upriver.deploy.components import api_server, open_storage, sink_loader
    from upriver.deploy.lag import LagMonitor

    settings = _bootstrap(settings)
    storage = open_storage(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    api = api_server(settings, storage).start()
    lag = LagMonitor.for_pipeline(settings).start()
    print(f"sink running; read API and /metrics on {api.url}", flush=True)
    try:
        sink_loader(settings, storage).run(stop)
    finally:
        lag.stop()
        api.stop()
    return 0


EMIT_WAIT_S = 60.0  # how long `upriver emit` keeps trying to deliver each event (Kafka down, restarting)


def cmd_emit(settings: Settings, args: argparse.Namespace) -> int:
    """Send a file's events; exit 0 only when every event was delivered (1 if any was not, 2 for bad lines)."""
    from collections import Counter

    from producers.emitter import DeliveryError, LineageEmitter
    from producers.ndjson import BadLine, read_events

    settings = _bootstrap(settings)
    wait: float = args.wait
    topic = settings.topics.events
    bad = 0
    # Each event may wait `wait` s for Kafka (librdkafka then fails it with _MSG_TIMED_OUT), and so may its
    # topic: librdkafka otherwise fails every queued event with UNKNOWN_TOPIC_OR_PART when a broker that was
    # down for over 30 s comes back before it has (auto-)created the topic. Reconnect at least every second
    # so a broker that comes back is used at once, not after a 10 s backoff.
    wait_ms = max(int(wait * 1000), 50)
    overrides = {"message.timeout.ms": wait_ms, "topic.metadata.propagation.max.ms": wait_ms,
                 "reconnect.backoff.max.ms": 1000}  # fmt: skip
    emitter = LineageEmitter(
        settings.kafka_config(), topic, registry_url=settings.schema_registry_url, producer_overrides=overrides
    )
    for item in read_events(Path(args.file)):
        if isinstance(item, BadLine):
            bad += 1
            print(f"{args.file}:{item.line}: not sent: {item.reason}", file=sys.stderr)
        else:
            emitter.emit(item)
    reasons: Counter[str] = Counter()
    try:
        emitter.flush(wait + 5)  # each event's own timeout ends by then; the margin is for the last reports
    except DeliveryError as exc:
        reasons.update(reason for _key, reason in exc.failures)
        if exc.pending:
            reasons[f"still queued, no answer from Kafka within {wait:g}s"] += exc.pending
    stats = emitter.stats
    missing = stats.sent - stats.delivered
    lines = f"; {bad} bad line(s) not sent" if bad else ""
    print(f"delivered {stats.delivered} of {stats.sent} event(s) to {topic}{lines}")
    if missing:
        print(f"NOT DELIVERED: {missing} of {stats.sent} event(s) (waited up to {wait:g}s for Kafka, --wait):",
              file=sys.stderr)  # fmt: skip
        for reason, n in reasons.most_common():
            print(f"  {n} x {reason}", file=sys.stderr)
        return 1
    return 2 if bad else 0


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 2_000_000:  # librdkafka's message.timeout.ms tops out at 2^31-1 ms
        raise argparse.ArgumentTypeError(f"must be a number of seconds, > 0 and <= 2000000, got {text!r}")
    return value


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from producers.emitter import LineageEmitter
    from producers.simulator import Simulator
    from schemas.codec import make_codec

    settings = _bootstrap(settings)
    codec = make_codec("lineage_event", settings.schema_registry_url, settings.topics.events)
    sim = Simulator(codec, seed=args.seed, clock=lambda: time.time_ns() // 1_000_000)
    with LineageEmitter(settings.kafka_config(), settings.topics.events, codec=codec) as emitter:
        for m in sim.messages(args.events):
            if m.event is not None:
                emitter.emit(m.event)
            else:
                emitter.send_encoded(m.payload or b"", m.key)
    t = sim.truth
    print(
        f"sent {t.events} events, {t.duplicates} duplicates, {t.malformed} malformed; "
        f"expect {len(t.edge_rows)} edges; production deployment: {t.production_deployment}"
    )
    return 0


class CliError(Exception):
    """A query the user can fix (unknown node, bad argument): printed to stderr, exit code 1."""


def _query_api(api_url: str, path: str, query: str, token: str = "") -> Any:
    request = urllib.request.Request(f"{api_url}{path}?{query}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            data = resp.read()
            if resp.headers.get_content_type() == "application/json":
                return json.loads(data)
            return data.decode()
    except urllib.error.HTTPError as exc:
        raise CliError(json.loads(exc.read()).get("error", str(exc))) from exc


def _read_side(settings: Settings, path: str, params: dict[str, Any]) -> Any:
    """One read-side query: through the running stack's API when it owns the embedded database, else
    against ClickHouse directly. Both run `upriver.http.api.handle`, so the answers are the same."""
    from upriver.http.api import ApiError, TextBody
    from upriver.http.routes import handle
    from upriver.local.stack import read_state

    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
    state = read_state(settings.home)
    if state is not None and state.get("api_url") and settings.clickhouse_url.startswith("chdb://"):
        return _query_api(state["api_url"], path, query, settings.api_token)
    from upriver.deploy.components import open_storage

    reader = open_storage(settings, migrate=False).reader()
    try:
        body = handle(reader, path, query)
    except ApiError as exc:
        raise CliError(str(exc)) from exc
    return body.text if isinstance(body, TextBody) else body


def _node_arg(args: argparse.Namespace) -> str:
    if getattr(args, "column", None):
        table, _, column = args.column.rpartition(".")
        if not table or not column:
            raise CliError(f"--column wants TABLE.COLUMN (a node id or name, a dot, a column), got {args.column!r}")
        return f"{table}#{column}"
    if not args.node:
        raise CliError("give a node (kind:namespace/name or a unique name), or --column TABLE.COLUMN")
    node: str = args.node
    return node


def _reporting_cli_errors(
    run: Callable[[Settings, argparse.Namespace], int],
) -> Callable[[Settings, argparse.Namespace], int]:
    """A command whose CliError (a query the user can fix) is printed to stderr with exit code 1."""

    def command(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return run(settings, args)
        except CliError as exc:
            print(str(exc), file=sys.stderr)
            return 1

    return command


@_reporting_cli_errors
def cmd_lineage(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.readside.lineage import LineageGraph, render_tree

    action = args.action
    common = {"as_of": args.as_of}
    if action in ("upstream", "downstream"):
        node = _node_arg(args)
        params = {"node": node, "depth": args.depth, "kind": args.kind, **common}
        if args.via_jobs:
            params["via_jobs"] = "true"
        body = _read_side(settings, f"/api/v1/{action}", params)
        if args.json:
            print(json.dumps(body, indent=2))
        elif args.kind:
            for n in body["nodes"]:
                print(f"{n['level']:>3}  {n['id']}")
        else:
            print(render_tree(LineageGraph.from_json(body)))
    elif action == "impact":
        fmt = "csv" if args.csv else "json"
        body = _read_side(
            settings,
            "/api/v1/impact",
            {"node": _node_arg(args), "depth": args.depth, "max_nodes": args.max_nodes, "format": fmt, **common},
        )
        if args.csv or args.json:
            print(body if args.csv else json.dumps(body, indent=2), end="" if args.csv else "\n")
        else:
            print(f"impact of {body['root']}: {body['total']} node(s)" + (" (partial)" if body["partial"] else ""))
            for kind, nodes in body["by_kind"].items():
                print(f"  {kind} ({len(nodes)}):")
                for n in nodes[:50]:
                    print(f"    {n}")
                if len(nodes) > 50:
                    print(f"    ... {len(nodes) - 50} more (use --csv or --json for all)")
    elif action == "path":
        if not args.to:
            raise CliError("path needs two nodes: upriver lineage path FROM TO")
        body = _read_side(settings, "/api/v1/path", {"from": _node_arg(args), "to": args.to, **common})
        if args.json:
            print(json.dumps(body, indent=2))
        elif not body["found"]:
            print(f"no path between {body['from']} and {body['to']}")
            return 1
        else:
            for e in body["edges"]:
                print(f"{e['src']} -[{e['edge_type']}]-> {e['dst']}")
    elif action == "provenance":
        body = _read_side(settings, "/api/v1/provenance", {"node": _node_arg(args), "version": args.version, **common})
        if args.json:
            print(json.dumps(body, indent=2))
        else:
            print(
                f"{body['node']}@{body['version']} was written by run {body['run_id']} of {body['job']} "
                f"({body['job_kind']}, {body['status']}), which read:"
            )
            for i in body["inputs"]:
                print(f"  {i['id']}" + (f"@{i['version']}" if i["version"] else ""))
    elif action == "node":
        print(json.dumps(_read_side(settings, "/api/v1/node", {"node": _node_arg(args)}), indent=2))
    elif action == "search":
        for n in _read_side(settings, "/api/v1/search", {"q": _node_arg(args)})["nodes"]:
            print(n)
    return 0


def _when(ms: int | None) -> str:
    from datetime import UTC, datetime

    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@_reporting_cli_errors
def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    """`upriver health`, `upriver alerts`, `upriver drift-impact NODE` (docs/health.md)."""
    if args.command == "health":
        body = _read_side(settings, "/api/v1/health", {"namespace": args.namespace, "as_of": args.as_of})
        if args.json:
            print(json.dumps(body, indent=2))
            return 0
        cols = ("artifacts", "fresh", "late", "stale", "never_seen", "unknown", "coverage_ratio", "open_alerts")
        print(f"{'namespace':<28} " + " ".join(f"{c:>10}" for c in cols) + "  as of")
        for ns in body["namespaces"]:
            cells = " ".join(f"{ns.get(c, 0):>10.2f}" if c == "coverage_ratio" else f"{int(ns.get(c, 0)):>10}"
                             for c in cols)  # fmt: skip
            print(f"{ns['namespace']:<28} {cells}  {_when(ns['measured_at'])}")
        return 0
    if args.command == "alerts":
        params = {"open": "true" if args.open else "", "kind": args.kind, "namespace": args.namespace,
                  "as_of": args.as_of}  # fmt: skip
        alerts = _read_side(settings, "/api/v1/alerts", params)["alerts"]
        if args.json:
            print(json.dumps(alerts, indent=2))
            return 0
        for a in alerts:
            resolved = "" if a["resolved_at"] is None else f" -> resolved {_when(a['resolved_at'])}"
            print(f"{a['status']:<8} {a['severity']:<8} {a['kind']:<18} {a['subject']}  "
                  f"opened {_when(a['opened_at'])}{resolved}: {a['reason']}")  # fmt: skip
        print(f"{len(alerts)} alert(s)", file=sys.stderr)
        return 0
    body = _read_side(settings, "/api/v1/drift-impact", {"node": args.node, "as_of": args.as_of})
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    if not body["signals"]:
        print(f"no drift or quality signal on {body['node']}")
    for s in body["signals"]:
        print(f"{s['signal_type']} on {body['node']} at {_when(s['signal_time'])} ({s['signal_id']})")
        for link in s["affects"]:
            print(f"  affects {link['target']}@{link['version'] or '-'}  via {' -> '.join(link['path'])}")
        for link in s["root_causes"]:
            print(f"  #{link['rank']} cause? {link['why'].lower()} on {link['target']}  ({link['distance']} hops)")
    return 0


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.local.broker import ensure_jars

    libs = ensure_jars(settings.cache_dir)
    print(f"Kafka broker jars in {libs}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upriver", description="Real-time lineage for AI/ML systems.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the local stack in the foreground until Ctrl-C")
    up.add_argument("--worker-log-level", default="WARNING")
    up.set_defaults(fn=cmd_up)
    demo = sub.add_parser("demo", help="start the stack, stream a workload, print what arrived, stop")
    demo.add_argument("--events", type=int, default=20_000)
    # A fresh seed per run by default: the same seed re-sends the same event ids, which the stack's dedup
    # (kept in UPRIVER_HOME across runs) rightly drops as duplicates.
    demo.add_argument("--seed", type=int, default=None, help="simulator seed (default: new each run)")
    demo.set_defaults(fn=cmd_demo)
    worker = sub.add_parser("worker", help="run the faust processor worker")
    worker.add_argument("--log-level", default="WARNING")
    worker.set_defaults(fn=cmd_worker)
    sub.add_parser("sink", help="run the ClickHouse sink and the read API").set_defaults(fn=cmd_sink)
    emit = sub.add_parser(
        "emit",
        help="send LineageEvents from an NDJSON file",
        description="Exit status: 0 every event delivered, 1 some not delivered (the reasons are printed), "
        "2 bad lines in the file (the others were sent).",
    )
    emit.add_argument("file")
    emit.add_argument(
        "--wait", type=_seconds, default=EMIT_WAIT_S, metavar="SECONDS",
        help=f"keep trying to deliver each event this long while Kafka is unreachable (default {EMIT_WAIT_S:g})",
    )  # fmt: skip
    emit.set_defaults(fn=cmd_emit)
    sim = sub.add_parser("simulate", help="send a simulated AI-platform workload")
    sim.add_argument("--events", type=int, default=10_000)
    sim.add_argument("--seed", type=int, default=7)
    sim.set_defaults(fn=cmd_simulate)
    lin = sub.add_parser(
        "lineage",
        help="query lineage: upstream, downstream, impact, path, provenance, node, search",
        description="Every query reads the graph as valid now, or at --as-of TIME (ISO 8601 or epoch ms).",
    )
    lin.add_argument("action", choices=("upstream", "downstream", "impact", "path", "provenance", "node", "search"))
    lin.add_argument("node", nargs="?", help="node id kind:namespace/name (or a unique name); search: text")
    lin.add_argument("to", nargs="?", help="path: the other node")
    lin.add_argument("--depth", type=int, default=10)
    lin.add_argument("--as-of", default=None, help="time travel: the graph as valid at this time")
    lin.add_argument("--kind", action="append", help="upstream/downstream: list only nodes of these kinds")
    lin.add_argument("--column", help="upstream/downstream: walk column lineage from TABLE.COLUMN")
    lin.add_argument("--via-jobs", action="store_true", help="upstream/downstream: show the jobs between artifacts")
    lin.add_argument("--max-nodes", type=int, default=10_000, help="impact: stop after this many nodes")
    lin.add_argument("--version", help="provenance: the version to explain (default: the current one)")
    lin.add_argument("--csv", action="store_true", help="impact: CSV export")
    lin.add_argument("--json", action="store_true")
    lin.set_defaults(fn=cmd_lineage)
    health = sub.add_parser("health", help="lineage health per namespace: freshness, coverage, open alerts")
    health.add_argument("--namespace", help="only this namespace")
    health.add_argument("--as-of", default=None, help="as things stood at this time (ISO 8601 or epoch ms)")
    health.add_argument("--json", action="store_true")
    health.set_defaults(fn=cmd_health)
    alerts = sub.add_parser("alerts", help="lineage health alerts (stale, orphaned, incomplete, drift impact)")
    alerts.add_argument("--open", action="store_true", help="only open alerts")
    alerts.add_argument("--kind", help="only this kind, e.g. STALE")
    alerts.add_argument("--namespace", help="only this namespace")
    alerts.add_argument("--as-of", default=None, help="as things stood at this time (ISO 8601 or epoch ms)")
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(fn=cmd_health)
    drift = sub.add_parser("drift-impact", help="models and deployments a node's drift reaches; root causes")
    drift.add_argument("node", help="node id kind:namespace/name (or a unique name)")
    drift.add_argument("--as-of", default=None, help="as things stood at this time (ISO 8601 or epoch ms)")
    drift.add_argument("--json", action="store_true")
    drift.set_defaults(fn=cmd_health)
    kafka = sub.add_parser("kafka", help="fetch the Kafka broker jars (once, from Maven Central)")
    kafka.add_argument("action", choices=("fetch",))
    kafka.set_defaults(fn=cmd_kafka)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.fn(Settings.from_env(), args)
    return code
