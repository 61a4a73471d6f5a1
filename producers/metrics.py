"""Prometheus metrics of the producers package (the SDK), each name declared once here. No logic."""

from __future__ import annotations

from prometheus_client import Counter

SENT = Counter("upriver_sdk_events_sent_total", "Lineage events handed to the Kafka producer")
DELIVERED = Counter("upriver_sdk_events_delivered_total", "Lineage events Kafka acknowledged")
DROPPED = Counter(
    "upriver_sdk_events_dropped_total",
    "Lineage events lost, by reason (buffer_full, encode_error, too_large, produce_failed, delivery_failed)",
    ["reason"],
)
