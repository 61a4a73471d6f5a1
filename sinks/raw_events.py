"""The OpenLineage topic's messages as rows of `lineage_events` (layout `sinks.rows.LINEAGE_EVENTS`). Pure.

Every message is kept exactly as received (`payload`); the columns beside it are read from it so that
`GET /api/v1/events/lineage` and the stats can filter without parsing JSON. A message that is not UTF-8 JSON
holding an object with an ISO 8601 `eventTime` cannot become a row (RowError: the sink skips and counts it,
and the worker dead-letters it with its payload). JSON's non-standard NaN/Infinity are refused too: the
payload is written into API answers as it is, and they would make those answers invalid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sinks.rows import Row, RowError, utc_from_millis

RUN_EVENT, DATASET_EVENT, JOB_EVENT = "RUN_EVENT", "DATASET_EVENT", "JOB_EVENT"
# What DateTime64(6, 'UTC') holds: [1900-01-01, 2300-01-01)
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2300, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def event_kind(doc: Mapping[str, Any]) -> str:
    """Marquez's `_event_type` of an event, decided as Upriver maps it (schemas/openlineage.py `to_record`):
    with a `run` a RunEvent; without `run` and `job` but with a `dataset` a DatasetEvent; else a JobEvent."""
    if doc.get("run") is not None:
        return RUN_EVENT
    if doc.get("job") is None and isinstance(doc.get("dataset"), dict):
        return DATASET_EVENT
    return JOB_EVENT


def _text(obj: Any, key: str) -> str:
    """A text field for a column beside the payload. JSON can escape a lone surrogate (`"\\udfff"`), which no
    UTF-8 column holds (the insert would fail and stop the sink): it reads as U+FFFD there, while the payload
    keeps the escape exactly as sent."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, str):
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def parse_event(value: bytes) -> dict[str, Any]:
    """The JSON object a raw message holds; RowError when it holds none."""
    try:
        doc = json.loads(value.decode("utf-8"), parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RowError(f"OpenLineage message is not UTF-8 JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(doc, dict):
        raise RowError(f"OpenLineage message is JSON but not an object: {type(doc).__name__}")
    return doc


def event_time(doc: Mapping[str, Any]) -> datetime:
    """An event's eventTime, to the microsecond as Marquez keeps it (ISO 8601; no offset: UTC, as
    schemas/openlineage.py `parse_time` reads it); RowError when it has none ClickHouse can hold."""
    raw = doc.get("eventTime")
    try:
        t = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        t = None
    if t is None:
        raise RowError(f"OpenLineage message has no ISO 8601 eventTime, got {raw!r}")
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    if not EARLIEST <= t < LATEST:
        raise RowError(f"OpenLineage message's eventTime {raw!r} is outside the years 1900-2299")
    return t


def micros(t: datetime) -> int:
    """An aware datetime as epoch microseconds, exact."""
    return (t - _EPOCH) // _MICRO


def lineage_event_row(value: bytes, partition: int, offset: int, timestamp_ms: int) -> Row:
    """One OpenLineage topic message (its value, Kafka position and timestamp in ms; <= 0: none, now is
    used) as a row in `LINEAGE_EVENTS` column order."""
    doc = parse_event(value)
    when = event_time(doc)
    received = utc_from_millis(timestamp_ms) if timestamp_ms > 0 else datetime.now(UTC)
    job = doc.get("job")
    return (
        when,
        event_kind(doc),
        _text(doc, "eventType"),
        _text(doc.get("run"), "runId"),
        _text(job, "namespace"),
        _text(job, "name"),
        _text(doc, "producer"),
        value.decode("utf-8"),
        received,
        partition,
        offset,
    )
