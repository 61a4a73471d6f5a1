"""Prometheus metrics of the processor, each name declared once here. No logic."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_IN = Counter("upriver_processor_events_total", "Messages read from the events topic")
DUPLICATES = Counter("upriver_processor_duplicates_dropped_total", "Events dropped as duplicates")
REDELIVERED = Counter(
    "upriver_processor_redelivered_total", "Messages faust handed over again after this process handled them"
)
REPLAYS = Counter("upriver_processor_replays_total", "Events processed again after a restart")
DEAD_LETTERS = Counter(
    "upriver_processor_dead_letters_total", "Messages sent to the dead-letter topic", ["error_kind"]
)
EDGES_OUT = Counter("upriver_processor_edges_total", "Edges published (each run revision re-publishes its edges)")
RUNS_EVICTED = Counter("upriver_processor_runs_evicted_total", "Run states forgotten after the retention")
DEDUP_EVICTED = Counter("upriver_processor_dedup_evicted_total", "Dedup entries evicted after retention")
BATCH_SECONDS = Histogram(
    "upriver_processor_batch_seconds",
    "Time to process one batch of events (up to 1,000)",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
