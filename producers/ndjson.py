"""Read Upriver LineageEvents from NDJSON (one JSON object a line, the Avro record's field names).

Each bad line becomes a clear per-line error; good lines are never dropped because of a bad one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


def _time_ms(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("event_time must be epoch milliseconds or an ISO-8601 time")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError(f"event_time {value!r} has no time zone")
        return int(parsed.timestamp() * 1000)
    raise ValueError(f"event_time {value!r} is neither epoch milliseconds nor an ISO-8601 time")


def _ref(obj: dict[str, Any]) -> ArtifactRef:
    facets = obj.get("facets")
    return ArtifactRef(
        kind=str(obj["kind"]),
        namespace=str(obj["namespace"]),
        name=str(obj["name"]),
        version=None if obj.get("version") is None else str(obj["version"]),
        facets=facets if facets is None or isinstance(facets, str) else json.dumps(facets),
    )


def parse_event(obj: dict[str, Any]) -> LineageEvent:
    """One JSON object to an event; raises KeyError/ValueError/TypeError with what is wrong."""
    facets = obj.get("facets", "{}")
    return LineageEvent(
        event_id=str(obj["event_id"]),
        event_time=_time_ms(obj["event_time"]),
        producer=str(obj["producer"]),
        event_type=EventType(obj["event_type"]),
        job_namespace=str(obj["job_namespace"]),
        job_name=str(obj["job_name"]),
        job_kind=JobKind(obj.get("job_kind", "OTHER")),
        run_id=str(obj["run_id"]),
        parent_run_id=obj.get("parent_run_id"),
        inputs=tuple(_ref(a) for a in obj.get("inputs", ())),
        outputs=tuple(_ref(a) for a in obj.get("outputs", ())),
        facets=facets if isinstance(facets, str) else json.dumps(facets),
    )


def read_events(path: Path) -> Iterator[LineageEvent | BadLine]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise TypeError("a line must hold one JSON object")
                yield parse_event(obj)
            except json.JSONDecodeError as exc:
                yield BadLine(number, f"not JSON: {exc}")
            except KeyError as exc:
                yield BadLine(number, f"missing required field {exc}")
            except (ValueError, TypeError) as exc:
                yield BadLine(number, str(exc))


def to_json(event: LineageEvent) -> str:
    return json.dumps(event.to_record(), separators=(",", ":"))
