"""Table layouts (column names and ClickHouse types, declared once) and pure record -> row functions.

No I/O: decoded Avro records in, tuples out. `tests/unit/test_migrations.py` checks the layouts against
the tables the DDL creates, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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

LAYOUTS: Mapping[str, TableLayout] = {t.name: t for t in (EDGES, DEAD_LETTERS)}


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
            partition,
            offset,
        )
    except (KeyError, TypeError, OverflowError) as exc:
        raise RowError(f"Edge record cannot become a row: {type(exc).__name__}: {exc}") from exc


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
