"""`upriver emit|simulate`: send LineageEvents from an NDJSON file or a simulated workload."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from upriver.cli.run import _bootstrap
from upriver.settings import Settings

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


def add_commands(sub: Any) -> None:
    """Register this module's commands on the `upriver` parser's subparsers."""
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
