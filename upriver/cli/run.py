"""`upriver up|demo|worker|sink|kafka`: run the local stack, one deployable, or fetch the broker jars."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from upriver.settings import Settings, redact_url


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


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    from upriver.local.broker import ensure_jars

    libs = ensure_jars(settings.cache_dir)
    print(f"Kafka broker jars in {libs}")
    return 0


def add_commands(sub: Any) -> None:
    """Register this module's commands on the `upriver` parser's subparsers."""
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


def add_kafka_command(sub: Any) -> None:
    """`upriver kafka fetch`, registered last (the order `upriver --help` lists the commands in)."""
    kafka = sub.add_parser("kafka", help="fetch the Kafka broker jars (once, from Maven Central)")
    kafka.add_argument("action", choices=("fetch",))
    kafka.set_defaults(fn=cmd_kafka)
