"""Prometheus metrics of the processors package, each name declared once here. No logic.

Health gauges carry `namespace` (capped: `bounded_namespace`) and alert `kind` labels only — never an
artifact id — so their cardinality stays bounded however large the graph grows.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter("upriver_processor_events_total", "Messages read from the events topic")
MESSAGES_OUT = Counter("upriver_processor_messages_out_total", "Messages published, by output topic kind", ["output"])
DUPLICATES = Counter("upriver_processor_duplicates_dropped_total", "Events dropped as duplicates")
REDELIVERED = Counter(
    "upriver_processor_redelivered_total", "Messages faust handed over again after this process handled them"
)
COMMIT_REWINDS = Counter(
    "upriver_processor_commit_rewinds_total",
    "Partitions sought back because faust lost fetched messages below acknowledged ones (processors/worker/commits.py)",
)
COMMIT_HOLES_FILLED = Counter(
    "upriver_processor_commit_holes_filled_total",
    "Acknowledgements faust forgot (a failed commit) for messages this process handled, given back to it",
)
COMMIT_ACKS_TIDIED = Counter(
    "upriver_processor_commit_acks_tidied_total",
    "Commits before which faust's acknowledgement list held repeated or committed offsets "
    "(processors/worker/commits.py)",
)
REPLAYS = Counter("upriver_processor_replays_total", "Events processed again after a restart")
DEAD_LETTERS = Counter("upriver_processor_dead_letters_total", "Messages sent to the dead-letter topic", ["error_kind"])
EDGES_OUT = Counter("upriver_processor_edges_total", "Edges published (each run revision re-publishes its edges)")
RUNS_EVICTED = Counter("upriver_processor_runs_evicted_total", "Run states forgotten after the retention")
DEDUP_EVICTED = Counter("upriver_processor_dedup_evicted_total", "Dedup entries evicted after retention")
BATCH_SECONDS = Histogram(
    "upriver_processor_batch_seconds",
    "Time to process one batch of events (up to 1,000)",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

OPENLINEAGE_IN = Counter(
    "upriver_processor_openlineage_events_total",
    "OpenLineage JSON messages read from the OpenLineage topic: accepted, refused (dead-lettered), or "
    "mapped_by_api (the HTTP ingest's raw copies, skipped)",
    ["result"],
)
OPENLINEAGE_ROUTED = Counter(
    "upriver_processor_openlineage_routed_total",
    "Accepted OpenLineage events by where they were handled: in_place (this process owns the run's partition) or "
    "events_topic (sent on to the process that owns it)",
    ["route"],
)

# ---- health (processors/health/engine.py) ------------------------------------------------------------------
HEALTH_RUNS_IN = Counter("upriver_health_runs_total", "Run records read by the health processor")
HEALTH_LATE = Gauge("upriver_health_late_facts", "Run records that arrived later than the lateness bound")
ALERTS_OUT = Counter("upriver_health_alerts_total", "Alert transitions published", ["kind", "status"])
DRIFT_LINKS_OUT = Counter("upriver_health_drift_links_total", "Drift links published", ["direction"])
HEALTH_PASS_SECONDS = Histogram(
    "upriver_health_timer_pass_seconds",
    "Duration of one health timer pass (sweep of every artifact and the namespace metrics)",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HEALTH_SETTLED = Gauge("upriver_health_settled_time_seconds", "Event time up to which facts are applied")
HEALTH_ARTIFACTS = Gauge("upriver_health_artifacts", "Artifacts known, by namespace", ["namespace"])
STALE_ARTIFACTS = Gauge(
    "upriver_health_stale_artifacts", "Artifacts past their freshness SLA (LATE or STALE), by namespace", ["namespace"]
)
ORPHANED_ARTIFACTS = Gauge(
    "upriver_health_orphaned_artifacts",
    "Open orphan alerts (missing upstream, unregistered model, unused), by namespace",
    ["namespace"],
)
OPEN_ALERTS = Gauge("upriver_health_open_alerts", "Open alerts by kind and namespace", ["kind", "namespace"])
COVERAGE = Gauge(
    "upriver_health_coverage_ratio", "Share of artifacts with upstream lineage, by namespace", ["namespace"]
)

MAX_NAMESPACE_LABELS = 50
_namespaces: set[str] = set()


def bounded_namespace(namespace: str) -> str:
    """The namespace as a label value: the first MAX_NAMESPACE_LABELS seen keep their name, the rest `_other`."""
    if namespace in _namespaces:
        return namespace
    if len(_namespaces) < MAX_NAMESPACE_LABELS:
        _namespaces.add(namespace)
        return namespace
    return "_other"
