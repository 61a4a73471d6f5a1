"""Decode and validate one raw event payload; say exactly why it is rejected. No I/O, no Kafka.

A rejection is data (error kind + reason) that the wiring sends to the dead-letter topic.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from schemas.codec import Codec, CodecError

Record = dict[str, Any]

UNDECODABLE = "UNDECODABLE"
INVALID = "INVALID"
PROCESSING = "PROCESSING"  # decoded and valid, but handling it failed (the reason names the error)

KIND_RE = re.compile(r"[A-Z][A-Z0-9_]*")  # fullmatch: `$` would let a trailing newline through
# 2000-01-01T00:00:00Z in epoch ms: anything earlier is a unit mistake (seconds sent as ms).
MIN_EVENT_TIME_MS = 946_684_800_000
# 2100-01-01T00:00:00Z: later is a unit mistake (microseconds sent as ms) or garbage; ClickHouse's
# DateTime64 could not hold 2^62 at all (the sink skipped such rows, neither stored nor dead-lettered).
MAX_EVENT_TIME_MS = 4_102_444_800_000
# With the receiver's clock: more than a day ahead is refused (its edges would only be valid from then on,
# so queries for "now" would never show them).
MAX_AHEAD_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rejection:
    error_kind: str
    reason: str


def _name_problems(where: str, value: str) -> list[str]:
    if not value:
        return [f"{where} is empty"]
    if value != value.strip():
        return [f"{where} {value!r} has leading or trailing white space"]
    return []


def problems(record: Record, now_ms: int | None = None) -> list[str]:
    """Every rule the decoded event breaks (empty list: valid). Naming rules: docs/event-model.md. With
    `now_ms` (the receiver's clock), an event time more than a day ahead of it is refused too."""
    found: list[str] = []
    try:
        uuid.UUID(record["event_id"])
    except ValueError:
        found.append(f"event_id {record['event_id']!r} is not a UUID")
    t = record["event_time"]
    if t < MIN_EVENT_TIME_MS:
        found.append(f"event_time {t} is before 2000-01-01 (expected epoch milliseconds)")
    elif t >= MAX_EVENT_TIME_MS:
        found.append(f"event_time {t} is after 2100-01-01 (expected epoch milliseconds)")
    elif now_ms is not None and t > now_ms + MAX_AHEAD_MS:
        found.append(f"event_time {t} is more than a day ahead of the receiver's clock ({now_ms})")
    found += _name_problems("producer", record["producer"])
    found += _name_problems("job_namespace", record["job_namespace"])
    found += _name_problems("job_name", record["job_name"])
    found += _name_problems("run_id", record["run_id"])
    for side in ("inputs", "outputs"):
        for i, ref in enumerate(record[side]):
            where = f"{side}[{i}]"
            if not KIND_RE.fullmatch(ref["kind"]):
                found.append(f"{where}.kind {ref['kind']!r} is not an upper-case kind like DATASET")
            found += _name_problems(f"{where}.namespace", ref["namespace"])
            found += _name_problems(f"{where}.name", ref["name"])
    return found


def accept(codec: Codec, payload: bytes | None, now_ms: int | None = None) -> Record | Rejection:
    """The decoded event, or why it cannot be taken (`now_ms`: see `problems`)."""
    if not payload:
        return Rejection(UNDECODABLE, "empty message value")
    try:
        record = codec.decode(payload)
    except CodecError as exc:
        return Rejection(UNDECODABLE, str(exc))
    found = problems(record, now_ms)
    if found:
        return Rejection(INVALID, "; ".join(found))
    return record
