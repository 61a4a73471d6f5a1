"""Table layouts (column names and ClickHouse types, declared once) and pure record -> row functions.

No I/O: decoded Avro records in, tuples out. `tests/unit/test_migrations.py` checks the layouts against
the tables the DDL creates, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import identity
from schemas.openlineage import aliases_of

Row = tuple[Any, ...]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME = "DateTime64(3, 'UTC')"


class RowError(ValueError):
    """A decoded record cannot become a row (missing field, wrong type): a producer bug, skip and alert."""


@dataclass(frozen=True)
class TableLayout:
    """The columns the sink writes to a table, in row order; server-filled columns are left out."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]


def _layout(name: str, *pairs: tuple[str, str]) -> TableLayout:
    return TableLayout(name, tuple(c for c, _ in pairs), tuple(t for _, t in pairs))


# `inserted_at` is absent on purpose: the server's DEFAULT now64(3) is the ReplacingMergeTree version.
EDGES = _layout(
    "edges",
    ("src", "String"),
    ("dst", "String"),
    ("edge_type", "LowCardinality(String)"),
    ("src_version", "Nullable(String)"),
    ("dst_version", "Nullable(String)"),
    ("run_id", "String"),
    ("job", "String"),
    ("event_id", "String"),
    ("event_time", _TIME),
    ("derived_at", _TIME),
    ("valid_from", _TIME),
    ("run_status", "LowCardinality(String)"),
    ("revision", "UInt32"),
    ("append", "Bool"),
    ("subtype", "Nullable(String)"),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

RUNS = _layout(
    "runs",
    ("run_id", "String"),
    ("revision", "UInt32"),
    ("job_namespace", "String"),
    ("job_name", "String"),
    ("job_kind", "LowCardinality(String)"),
    ("parent_run_id", "Nullable(String)"),
    ("status", "LowCardinality(String)"),
    ("started_at", _TIME),
    ("ended_at", f"Nullable({_TIME})"),
    ("error", "Nullable(String)"),
    ("input_ids", "Array(String)"),
    ("input_kinds", "Array(LowCardinality(String))"),
    ("input_versions", "Array(String)"),
    ("input_facets", "Array(String)"),
    ("output_ids", "Array(String)"),
    ("output_kinds", "Array(LowCardinality(String))"),
    ("output_versions", "Array(String)"),
    ("output_facets", "Array(String)"),
    ("facets", "String"),
    ("updated_at", _TIME),
    ("job_id", "String"),
    ("input_namespaces", "Array(String)"),
    ("input_names", "Array(String)"),
    ("output_namespaces", "Array(String)"),
    ("output_names", "Array(String)"),
    ("alias_ids", "Array(String)"),
    ("alias_targets", "Array(String)"),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

DEAD_LETTERS = _layout(
    "dead_letters",
    ("error_kind", "LowCardinality(String)"),
    ("reason", "String"),
    ("stage", "LowCardinality(String)"),
    ("source_topic", "String"),
    ("source_partition", "Int32"),
    ("source_offset", "Int64"),
    ("key", "Nullable(String)"),
    ("payload", "String"),
    ("failed_at", _TIME),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

HEALTH = _layout(
    "health",
    ("measured_at", _TIME),
    ("namespace", "LowCardinality(String)"),
    ("metric", "LowCardinality(String)"),
    ("value", "Float64"),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

ALERTS = _layout(
    "alerts",
    ("alert_id", "String"),
    ("kind", "LowCardinality(String)"),
    ("category", "LowCardinality(String)"),
    ("subject", "String"),
    ("namespace", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("status", "LowCardinality(String)"),
    ("reason", "String"),
    ("path", "Array(String)"),
    ("opened_at", _TIME),
    ("resolved_at", f"Nullable({_TIME})"),
    ("updated_at", _TIME),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

DRIFT_LINKS = _layout(
    "drift_links",
    ("signal_id", "String"),
    ("signal_type", "LowCardinality(String)"),
    ("source", "String"),
    ("source_version", "Nullable(String)"),
    ("signal_time", _TIME),
    ("direction", "LowCardinality(String)"),
    ("target", "String"),
    ("target_kind", "LowCardinality(String)"),
    ("target_version", "Nullable(String)"),
    ("distance", "UInt16"),
    ("path", "Array(String)"),
    ("rank", "UInt16"),
    ("linked_at", _TIME),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

TAG_CHANGES = _layout(
    "tag_changes",
    ("change_id", "String"),
    ("op", "LowCardinality(String)"),
    ("entity", "LowCardinality(String)"),
    ("entity_id", "String"),
    ("namespace", "String"),
    ("name", "String"),
    ("field", "Nullable(String)"),
    ("tag", "String"),
    ("description", "Nullable(String)"),
    ("changed_at", _TIME),
    ("source", "Nullable(String)"),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

# The OpenLineage topic's messages as received (their row function: sinks/raw_events.py).
LINEAGE_EVENTS = _layout(
    "lineage_events",
    ("event_time", "DateTime64(6, 'UTC')"),  # to the microsecond, as Marquez keeps (and orders) it
    ("kind", "LowCardinality(String)"),
    ("event_type", "LowCardinality(String)"),
    ("run_id", "String"),
    ("job_namespace", "String"),
    ("job_name", "String"),
    ("producer", "String"),
    ("payload", "String"),
    ("received_at", _TIME),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)

LAYOUTS: Mapping[str, TableLayout] = {
    t.name: t for t in (EDGES, RUNS, DEAD_LETTERS, HEALTH, ALERTS, DRIFT_LINKS, TAG_CHANGES, LINEAGE_EVENTS)
}


def utc_from_millis(millis: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime, exact (no float rounding)."""
    if isinstance(millis, bool) or not isinstance(millis, int):
        raise TypeError(f"expected epoch milliseconds as int, got {type(millis).__name__}")
    return _EPOCH + timedelta(milliseconds=millis)


def edge_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """A decoded Edge record plus its Kafka position as a row in `EDGES` column order."""
    try:
        return (
            record["src"],
            record["dst"],
            record["edge_type"],
            record.get("src_version"),
            record.get("dst_version"),
            record["run_id"],
            record["job"],
            record["event_id"],
            utc_from_millis(record["event_time"]),
            utc_from_millis(record["derived_at"]),
            utc_from_millis(record.get("valid_from", record["event_time"])),
            record.get("run_status", "COMPLETE"),
            record.get("revision", 1),
            bool(record.get("append", False)),
            record.get("subtype"),
            partition,
            offset,
        )
    except (KeyError, TypeError, OverflowError) as exc:
        raise RowError(f"Edge record cannot become a row: {type(exc).__name__}: {exc}") from exc


def _artifact_columns(refs: list[Mapping[str, Any]]) -> tuple[list[str], list[str], list[str], list[str]]:
    ids = [identity.node_id(r["kind"], r["namespace"], r["name"]) for r in refs]
    return ids, [r["kind"] for r in refs], [r.get("version") or "" for r in refs], [r.get("facets") or "" for r in refs]


def _aliases(refs: list[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(alias ids, canonical ids): every other name an artifact was sent under points at its node."""
    ids, targets = [], []
    for r in refs:
        for ns, name in aliases_of(r.get("facets")):
            ids.append(identity.node_id(r["kind"], ns, name))
            targets.append(identity.node_id(r["kind"], r["namespace"], r["name"]))
    return ids, targets


def run_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """A decoded Run record plus its Kafka position as a row in `RUNS` column order."""
    try:
        ended = record.get("ended_at")
        return (
            record["run_id"],
            record["revision"],
            record["job_namespace"],
            record["job_name"],
            record["job_kind"],
            record.get("parent_run_id"),
            record["status"],
            utc_from_millis(record["started_at"]),
            None if ended is None else utc_from_millis(ended),
            record.get("error"),
            *_artifact_columns(record["inputs"]),
            *_artifact_columns(record["outputs"]),
            record["facets"],
            utc_from_millis(record["updated_at"]),
            identity.job_id(record["job_namespace"], record["job_name"]),
            [r["namespace"] for r in record["inputs"]],
            [r["name"] for r in record["inputs"]],
            [r["namespace"] for r in record["outputs"]],
            [r["name"] for r in record["outputs"]],
            *_aliases([*record["inputs"], *record["outputs"]]),
            partition,
            offset,
        )
    except (KeyError, TypeError, OverflowError, AttributeError, identity.IdentityError) as exc:
        raise RowError(f"Run record cannot become a row: {type(exc).__name__}: {exc}") from exc


def dead_letter_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """A decoded DeadLetter record plus its Kafka position as a row in `DEAD_LETTERS` column order."""
    try:
        return (
            record["error_kind"],
            record["reason"],
            record["stage"],
            record["source_topic"],
            record["source_partition"],
            record["source_offset"],
            record.get("key"),
            record["payload"],
            utc_from_millis(record["failed_at"]),
            partition,
            offset,
        )
    except (KeyError, TypeError, OverflowError) as exc:
        raise RowError(f"DeadLetter record cannot become a row: {type(exc).__name__}: {exc}") from exc


def health_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """A decoded HealthMetric record plus its Kafka position as a row in `HEALTH` column order."""
    try:
        value = float(record["value"])
        return (utc_from_millis(record["measured_at"]), record["namespace"], record["metric"], value, partition, offset)
    except (KeyError, TypeError, OverflowError, ValueError) as exc:
        raise RowError(f"HealthMetric record cannot become a row: {type(exc).__name__}: {exc}") from exc


def alert_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """A decoded Alert record plus its Kafka position as a row in `ALERTS` column order."""
    try:
        resolved = record.get("resolved_at")
        return (
            record["alert_id"],
            record["kind"],
            record["category"],
            record["subject"],
            record["namespace"],
            record["severity"],
            record["status"],
            record["reason"],
            list(record["path"]),
            utc_from_millis(record["opened_at"]),
            None if resolved is None else utc_from_millis(resolved),
            utc_from_millis(record["updated_at"]),
            partition,
            offset,
        )
    except (KeyError, TypeError, OverflowError) as exc:
        raise RowError(f"Alert record cannot become a row: {type(exc).__name__}: {exc}") from exc


def drift_link_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """A decoded DriftLink record plus its Kafka position as a row in `DRIFT_LINKS` column order."""
    try:
        return (
            record["signal_id"],
            record["signal_type"],
            record["source"],
            record.get("source_version"),
            utc_from_millis(record["signal_time"]),
            record["direction"],
            record["target"],
            record["target_kind"],
            record.get("target_version"),
            record["distance"],
            list(record["path"]),
            record["rank"],
            utc_from_millis(record["linked_at"]),
            partition,
            offset,
        )
    except (KeyError, TypeError, OverflowError) as exc:
        raise RowError(f"DriftLink record cannot become a row: {type(exc).__name__}: {exc}") from exc


def tag_entity_id(entity: str, namespace: str, name: str) -> str:
    """The node id a tag change is about: a dataset's (a FIELD change's too: its dataset's), a job's; a TAG
    change (a tag defined) has none."""
    if entity in ("DATASET", "FIELD"):
        return identity.node_id("DATASET", namespace, name)
    return identity.job_id(namespace, name) if entity == "JOB" else ""


def tag_change_row(record: Mapping[str, Any], partition: int, offset: int) -> Row:
    """A decoded TagChange record plus its Kafka position as a row in `TAG_CHANGES` column order."""
    try:
        return (
            record["change_id"],
            record["op"],
            record["entity"],
            tag_entity_id(record["entity"], record["namespace"], record["name"]),
            record["namespace"],
            record["name"],
            record.get("field"),
            record["tag"],
            record.get("description"),
            utc_from_millis(record["changed_at"]),
            record.get("source"),
            partition,
            offset,
        )
    except (KeyError, TypeError, OverflowError) as exc:
        raise RowError(f"TagChange record cannot become a row: {type(exc).__name__}: {exc}") from exc
