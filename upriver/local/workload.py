"""Stream a simulated workload through a running stack and measure what arrived (demo and benchmark).

Compares what ClickHouse holds with the simulator's ground truth; it does not judge, it reports.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from producers.emitter import LineageEmitter
from producers.simulator import Simulator
from producers.truth import Truth
from schemas.codec import Codec, make_codec
from upriver.local.stack import LocalStack
from upriver.readside.stats import PipelineStats
from upriver.settings import Settings


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Report:
    events_sent: int
    duplicates_sent: int
    malformed_sent: int
    messages_sent: int
    failed_runs: int
    edges_expected: int
    edges_stored: int
    missing_edges: int
    unexpected_edges: int
    duplicate_edges_stored: int
    duplicates_dropped: int
    dlq_count: int
    send_s: float
    pipeline_s: float
    events_per_s: float
    latency_ms: dict[str, float]
    complete: bool
    dlq_reasons: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Every expected edge stored, none other: what a benchmark run must be to count."""
        return self.complete and self.missing_edges == 0 and self.unexpected_edges == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "exact": self.exact}


def _worker_metric(stack: LocalStack, name: str) -> int:
    try:
        return int(stack.worker_metrics().get(name, 0))
    except OSError:
        return -1  # worker metrics unreachable: reported, not guessed


def _send(settings: Settings, codec: Codec, simulator: Simulator, events: int, rate: float | None) -> int:
    """Emit the simulator's messages (paced at `rate` messages/s, or a burst); the count sent."""
    started = time.monotonic()
    messages = 0
    # librdkafka's info/warning lines (e.g. a PID retry while the broker warms up) are retried
    # internally; delivery failures still surface through flush().
    quiet = {"log_level": 3}
    with LineageEmitter(
        settings.kafka_config(), settings.topics.events, codec=codec, producer_overrides=quiet
    ) as emitter:
        for message in simulator.messages(events):
            if message.event is not None:
                emitter.emit(message.event)
            else:
                emitter.send_encoded(message.payload or b"", message.key)
            messages += 1
            if rate and messages % 50 == 0:
                ahead = messages / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    return messages


def _wait_landed(
    stats: PipelineStats, truth: Truth, stored_before: set[tuple[str, str, str, str]], dlq_before: int, timeout: float
) -> bool:
    """Until every expected edge row and dead letter is stored (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = stats.edge_rows() - stored_before
        if truth.edge_rows <= stored and stats.dead_letters() - dlq_before >= truth.malformed:
            return True
        time.sleep(0.25)
    return False


def run_workload(
    stack: LocalStack, events: int, seed: int = 7, timeout: float = 300.0, rate: float | None = None
) -> tuple[Report, Truth]:
    """Emit `events` simulated events (plus duplicates and bad messages) and wait until all landed.

    `rate` paces the emitter (messages/s); None sends as fast as the producer takes them (a burst).
    """
    if stack.storage is None:
        raise RuntimeError("start the stack before running a workload")
    settings = stack.settings
    codec = make_codec("lineage_event", settings.schema_registry_url, settings.topics.events)
    simulator = Simulator(codec, seed=seed, clock=now_ms)
    stats = PipelineStats(stack.storage.read_client, stack.storage.database)
    stored_before = stats.edge_rows()
    dlq_before = stats.dead_letters()
    dropped_before = _worker_metric(stack, "upriver_processor_duplicates_dropped_total")

    started_ms = now_ms()
    messages = _send(settings, codec, simulator, events, rate)
    sent_ms = now_ms()
    truth = simulator.truth

    complete = _wait_landed(stats, truth, stored_before, dlq_before, timeout)
    stored = stats.edge_rows() - stored_before
    last_ms = max(stats.last_insert_ms(), sent_ms)
    latency = stats.latency(since_ms=started_ms)
    pipeline_s = max(last_ms - started_ms, 1) / 1000
    dropped = _worker_metric(stack, "upriver_processor_duplicates_dropped_total")
    report = Report(
        events_sent=truth.events,
        duplicates_sent=truth.duplicates,
        malformed_sent=truth.malformed,
        messages_sent=messages,
        failed_runs=truth.failed_runs,
        edges_expected=len(truth.edge_rows),
        edges_stored=len(stored),
        missing_edges=len(truth.edge_rows - stored),
        unexpected_edges=len(stored - truth.edge_rows),
        duplicate_edges_stored=stats.duplicate_edge_rows(),
        duplicates_dropped=dropped - dropped_before if dropped >= 0 and dropped_before >= 0 else -1,
        dlq_count=stats.dead_letters() - dlq_before,
        send_s=round((sent_ms - started_ms) / 1000, 3),
        pipeline_s=round(pipeline_s, 3),
        events_per_s=round(truth.events / pipeline_s, 1),
        latency_ms={"p50": latency.p50, "p95": latency.p95, "p99": latency.p99},
        complete=complete,
        dlq_reasons=stats.dead_letter_reasons(),
    )
    return report, truth
