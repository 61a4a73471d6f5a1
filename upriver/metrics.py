"""Prometheus metrics of the upriver package (the local stack's own process), each name declared once here."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMER_LAG = Gauge(
    "upriver_consumer_lag",
    "Messages not yet consumed (log end offset - committed offset), summed over partitions",
    ["group", "topic"],
)
CONSUMER_COMMITTED = Gauge(
    "upriver_consumer_committed_offsets",
    "Committed offsets summed over partitions (never-committed partitions add 0): rate() is the commit progress",
    ["group", "topic"],
)
CONSUMER_STALLED = Gauge(
    "upriver_consumer_stalled_seconds",
    "Seconds the committed offsets have not moved while lag > 0 (0 while lag is 0 or the offsets move)",
    ["group", "topic"],
)
LAG_ERRORS = Gauge("upriver_consumer_lag_errors", "1 when the last lag measurement failed, else 0")

INGESTED = Counter(
    "upriver_openlineage_events_total",
    "OpenLineage events taken (accepted: published to the events topic) or refused, by transport",
    ["transport", "result"],
)
REQUEST_SECONDS = Histogram(
    "upriver_http_request_seconds",
    "HTTP API request latency, by method and route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

STAGE_UP = Gauge(
    "upriver_stage_up",
    "1 while a stage of the local stack (sink, worker, lag, broker) runs; 0 once it stopped unexpectedly",
    ["stage"],
)
