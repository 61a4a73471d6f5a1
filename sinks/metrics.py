"""Prometheus metrics of the sink, every name declared once here.

Nothing is registered at import time: `SinkMetrics(registry)` registers, `default_metrics()` does so
once for the process-wide default registry.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

ROWS_INSERTED = "upriver_sink_rows_inserted"
INSERT_SECONDS = "upriver_sink_insert_seconds"
BATCH_ROWS = "upriver_sink_batch_rows"
INSERT_FAILURES = "upriver_sink_insert_failures"
SKIPPED_STORED = "upriver_sink_skipped_already_stored"
UNDECODABLE = "upriver_sink_undecodable_messages"
END_TO_END = "upriver_sink_end_to_end_seconds"


class SinkMetrics:
    """The sink's counters and histograms, registered in one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.rows_inserted = Counter(ROWS_INSERTED, "Rows inserted into ClickHouse", ["table"], registry=registry)
        self.insert_seconds = Histogram(
            INSERT_SECONDS,
            "Latency of one successful batch insert",
            ["table"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.batch_rows = Histogram(
            BATCH_ROWS,
            "Rows per inserted batch",
            ["table"],
            buckets=(1, 10, 100, 500, 1000, 5000, 10000, 50000, 100000),
            registry=registry,
        )
        self.insert_failures = Counter(
            INSERT_FAILURES,
            "Failed ClickHouse calls (inserts and stored-offset reads), retried or fatal",
            ["table"],
            registry=registry,
        )
        self.skipped_stored = Counter(
            SKIPPED_STORED,
            "Messages skipped because ClickHouse already holds their offset (replay after a crash)",
            ["table"],
            registry=registry,
        )
        self.end_to_end_seconds = Histogram(
            END_TO_END,
            "From the input event's arrival in Kafka to its derived row's insert into ClickHouse",
            ["table"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=registry,
        )
        self.undecodable = Counter(
            UNDECODABLE,
            "Messages skipped because they could not be decoded into a row (a producer bug)",
            ["topic"],
            registry=registry,
        )


@cache
def default_metrics() -> SinkMetrics:
    """The sink metrics in prometheus_client's default registry, created on first use only."""
    return SinkMetrics(REGISTRY)
