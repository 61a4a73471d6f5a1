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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from upriver.settings import Settings

log = logging.getLogger("upriver")

COMMANDS = ("up", "demo", "worker", "sink", "emit", "simulate", "lineage", "kafka")


def _bootstrap(settings: Settings) -> Settings:
    """Settings with a Kafka to talk to: the configured one, else the running local stack's."""
    if settings.kafka_bootstrap:
        return settings
    from upriver.stack import read_state

    state = read_state(settings.home)
    if state is None:
        raise SystemExit(
            "no Kafka to talk to: set KAFKA_BOOTSTRAP_SERVERS or start the local stack with `upriver up`"
        )
    return settings.with_bootstrap(state["bootstrap"])


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.stack import LocalStack

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
        s = stack.settings
        print(f"Upriver is up.\n  Kafka:      {s.kafka_bootstrap}\n  ClickHouse: {s.clickhouse_url} "
              f"(database {s.clickhouse_database})\n  API:        {stack.api.url if stack.api else '-'}\n"
              f"  Metrics:    http://127.0.0.1:{s.metrics_port}/metrics (worker)\n"
              f"  Logs:       {stack.log_dir}\nSend events with `upriver simulate` or `upriver emit FILE`; "
              "Ctrl-C stops everything.", flush=True)
        while not stopping:
            if stack.worker is not None and stack.worker.poll() is not None:
                print(f"worker exited ({stack.worker.returncode}); see {stack.log_dir}/worker.log", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.demo import run_demo

    return run_demo(settings, events=args.events, seed=args.seed)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from processors.app import run_worker
    from upriver.components import processor_config

    run_worker(processor_config(_bootstrap(settings)), loglevel=args.log_level)
    return 0


def cmd_sink(settings: Settings, args: argparse.Namespace) -> int:
    """The sink and the read API in one process (with chDB only one process may open the database)."""
    import threading

    from upriver.api import ApiServer
    from upriver.components import open_storage, sink_loader

    settings = _bootstrap(settings)
    storage = open_storage(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    api = ApiServer(storage.reader(), settings.api_host, settings.api_port).start()
    print(f"sink running; read API on {api.url}", flush=True)
    try:
        sink_loader(settings, storage).run(stop)
    finally:
        api.stop()
    return 0


def cmd_emit(settings: Settings, args: argparse.Namespace) -> int:
    from producers.emitter import LineageEmitter
    from producers.ndjson import BadLine, read_events

    settings = _bootstrap(settings)
    bad = 0
    with LineageEmitter(
        settings.kafka_config(), settings.topics.events, registry_url=settings.schema_registry_url
    ) as emitter:
        for item in read_events(Path(args.file)):
            if isinstance(item, BadLine):
                bad += 1
                print(f"{args.file}:{item.line}: not sent: {item.reason}", file=sys.stderr)
            else:
                emitter.emit(item)
    print(f"sent {emitter.stats.sent} event(s) to {settings.topics.events}; {bad} bad line(s) not sent")
    return 2 if bad else 0


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
    print(f"sent {t.events} events, {t.duplicates} duplicates, {t.malformed} malformed; "
          f"expect {len(t.edge_rows)} edges; production deployment: {t.production_deployment}")
    return 0


def _lineage_via_api(api_url: str, direction: str, node: str, depth: int) -> dict[str, Any]:
    query = urllib.parse.urlencode({"node": node, "depth": depth})
    try:
        with urllib.request.urlopen(f"{api_url}/api/v1/{direction}?{query}", timeout=60) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as exc:
        raise SystemExit(json.loads(exc.read()).get("error", str(exc))) from exc


def cmd_lineage(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.lineage import LineageGraph, NodeNotFound, render_tree, to_json
    from upriver.stack import read_state

    state = read_state(settings.home)
    if state is not None and state.get("api_url") and settings.clickhouse_url.startswith("chdb://"):
        # The running stack owns the embedded database: ask it.
        body = _lineage_via_api(state["api_url"], args.direction, args.node, args.depth)
        graph = LineageGraph.from_json(body)
    else:
        from upriver.components import open_storage

        reader = open_storage(settings, migrate=False).reader()
        walk = reader.upstream if args.direction == "upstream" else reader.downstream
        try:
            graph = walk(args.node, depth=args.depth)
        except NodeNotFound as exc:
            print(str(exc), file=sys.stderr)
            return 1
    print(json.dumps(to_json(graph), indent=2) if args.json else render_tree(graph))
    return 0


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.broker import ensure_jars

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
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(fn=cmd_demo)
    worker = sub.add_parser("worker", help="run the faust processor worker")
    worker.add_argument("--log-level", default="WARNING")
    worker.set_defaults(fn=cmd_worker)
    sub.add_parser("sink", help="run the ClickHouse sink and the read API").set_defaults(fn=cmd_sink)
    emit = sub.add_parser("emit", help="send LineageEvents from an NDJSON file")
    emit.add_argument("file")
    emit.set_defaults(fn=cmd_emit)
    sim = sub.add_parser("simulate", help="send a simulated AI-platform workload")
    sim.add_argument("--events", type=int, default=10_000)
    sim.add_argument("--seed", type=int, default=7)
    sim.set_defaults(fn=cmd_simulate)
    lin = sub.add_parser("lineage", help="walk lineage upstream or downstream of a node")
    lin.add_argument("direction", choices=("upstream", "downstream"))
    lin.add_argument("node", help="node id, kind:namespace/name, e.g. model:registry/churn_model")
    lin.add_argument("--depth", type=int, default=10)
    lin.add_argument("--json", action="store_true")
    lin.set_defaults(fn=cmd_lineage)
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
