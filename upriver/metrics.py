"""Prometheus metrics of the upriver package (the local stack's own process), each name declared once here."""

from __future__ import annotations

from prometheus_client import Gauge

CONSUMER_LAG = Gauge(
    "upriver_consumer_lag",
    "Messages not yet consumed (log end offset - committed offset), summed over partitions",
    ["group", "topic"],
)
LAG_ERRORS = Gauge("upriver_consumer_lag_errors", "1 when the last lag measurement failed, else 0")
