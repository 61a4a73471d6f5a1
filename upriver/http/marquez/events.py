"""Marquez's raw events and stats routes (OpenLineageResource.getLineageEvents, StatsResource over StatsDao):
its parameters, defaults, buckets and JSON shapes; the rows are upriver/readside/events.py's
(`reader.raw_events`).

`GET /api/v1/events/lineage`: the RunEvents with `after` <= eventTime < `before` (Marquez's defaults
1970-01-01 and 2030-01-01), newest first unless sortDirection=asc, `limit` (100) from `offset` (0); each
event is written into the answer exactly as it was received, and `totalCount` counts every event of the
range, DatasetEvents and JobEvents too, as Marquez's count query does.

`GET /api/v1/stats/{lineage-events,jobs,datasets,sources}?period=DAY|WEEK&timezone=`: DAY is the 24 UTC
hours up to the current one, WEEK the 7 days of `timezone` up to today, each bucket as Marquez labels it (a
WEEK bucket's local midnights are written with a `Z`, as Marquez's `timestamp without time zone` columns come
out); lineage-events counts FAIL/START/COMPLETE/ABORT RunEvents by event time, the others how many jobs,
datasets and sources were seen by each bucket's end. Marquez's refusals: a period that is neither is 400
`Invalid period` (a bare string, as Marquez writes it), lineage-events with WEEK and no timezone 400
`Timezone must be specified for period 'WEEK'`; jobs/datasets/sources with WEEK and no timezone answer `[]`
(Marquez's SQL on a NULL zone). A zone Upriver does not know is a 400 (Marquez: a 500 from Postgres).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from upriver.http import routes
from upriver.http.api import Answer, MarquezError, TextBody
from upriver.http.marquez.params import LIMIT, OFFSET, enum, page
from upriver.http.marquez.shapes import iso
from upriver.http.spec import Param, Query
from upriver.readside.lineage import LineageReader

JSON = "application/json"
HOUR_MS = 3_600_000
SORT_DIRECTIONS = ("DESC", "ASC")  # Marquez's SortDirection
PERIODS = ("DAY", "WEEK")  # Marquez's Period
BEFORE = Param("before", description="events before this ISO 8601 date-time with an offset (Java's ZonedDateTime)",
               default="2030-01-01T00:00:00+00:00")  # fmt: skip
AFTER = Param("after", description="events at or after this ISO 8601 date-time with an offset",
              default="1970-01-01T00:00:00+00:00")  # fmt: skip
SORT = Param("sortDirection", description="desc: newest first; asc: oldest first", default="desc",
             enum=("desc", "asc"))  # fmt: skip
PERIOD = Param("period", description="DAY: the last 24 hours, by hour (UTC); WEEK: the last 7 days of `timezone`",
               enum=PERIODS, example="DAY")  # fmt: skip
TIMEZONE = Param("timezone", description="an IANA time zone: WEEK's days (required by lineage-events for WEEK)",
                 example="Europe/Paris")  # fmt: skip
LINEAGE_METRICS = "Marquez's LineageMetric list: startInterval, endInterval, fail, start, complete, abort"
INTERVAL_METRICS = "Marquez's IntervalMetric list: startInterval, endInterval, count"
# ZonedDateTime.parse (ISO_ZONED_DATE_TIME): date, time (seconds and up to 9 fraction digits optional), an
# offset, optionally a [zone id]
_ZONED = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{0,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)(?:\[[^\]]+\])?"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class MarquezTextError(MarquezError):
    """A refusal Marquez writes as a bare string entity (not JSON, though served as application/json)."""

    def body(self) -> Any:
        return TextBody(JSON, str(self))


def zoned_us(text: str) -> int:
    """A Marquez ZonedDateTime parameter as epoch microseconds, rounded up (an event time, in whole µs, is
    before or at/after it exactly when it is before or at/after the rounded value); Marquez's 400 when
    unreadable."""
    found = _ZONED.fullmatch(text)
    try:
        if found is None:
            raise ValueError("not an ISO 8601 date-time with an offset")
        y, mo, d, h, mi, s, fraction, z, sign, oh, om, os_ = found.groups()
        offset = 0 if z else (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om or 0) * 60 + int(os_ or 0))
        if abs(offset) > 18 * 3600:
            raise ValueError("zone offset not in valid range: -18:00 to +18:00")
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=UTC)
    except ValueError as exc:
        raise MarquezError(400, f"Parameter is invalid: Text '{text}' could not be parsed: {exc}") from None
    nanos = int((fraction or "").ljust(9, "0"))
    return (int(local.timestamp()) - offset) * 1_000_000 + -(-nanos // 1000)


@routes.get("/api/v1/events/lineage", "Marquez: the OpenLineage RunEvents of a time range, as received",
            BEFORE, AFTER, SORT, LIMIT, OFFSET, marquez=True,
            answer="Marquez's LineageEventList: events (each as received), totalCount (all of the range)")  # fmt: skip
def marquez_lineage_events(reader: LineageReader, q: Query) -> Answer:
    before, after = zoned_us(q.text("before") or ""), zoned_us(q.text("after") or "")
    sort = enum("sortDirection", [q.text("sortDirection") or "desc"], SORT_DIRECTIONS)[0]
    limit, offset = page(q)
    payloads, total = reader.raw_events.lineage_events(before, after, limit, offset, ascending=sort == "ASC")
    return TextBody(JSON, '{"events": [' + ", ".join(payloads) + f'], "totalCount": {total}}}')


# ---- stats --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """One interval of a stats answer: its bounds (epoch ms) and how Marquez writes them."""

    start: int
    end: int
    start_label: str
    end_label: str


def hours(now: int) -> list[Bucket]:
    """DAY: the hour 23 hours before now's, up to now's hour (StatsDao's hour_series)."""
    first = (now // HOUR_MS - 23) * HOUR_MS
    spans = [(first + i * HOUR_MS, first + (i + 1) * HOUR_MS) for i in range(24)]
    return [Bucket(a, b, str(iso(a)), str(iso(b))) for a, b in spans]


def days(now: int, zone: tzinfo) -> list[Bucket]:
    """WEEK: the 7 days of `zone` up to today's (StatsDao's day_series), from local midnight to midnight."""
    today = datetime.fromtimestamp(now / 1000, zone).date()

    def midnight(day: date) -> int:
        return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()) * 1000

    out = []
    for back in range(6, -1, -1):
        day, following = today - timedelta(days=back), today - timedelta(days=back - 1)
        label, end_label = f"{day.isoformat()}T00:00:00Z", f"{following.isoformat()}T00:00:00Z"
        out.append(Bucket(midnight(day), midnight(following), label, end_label))
    return out


def zone_named(name: str) -> tzinfo:
    try:
        return UTC if name.upper() == "UTC" else ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise MarquezError(400, f'time zone "{name}" not recognized') from None


def _buckets(q: Query, zone_required: bool) -> list[Bucket] | None:
    """The buckets asked for; None for Marquez's answer to WEEK without a timezone (jobs, datasets, sources)."""
    raw = q.text("period")
    period = enum("period", [raw], PERIODS)[0] if raw else None
    zone = q.text("timezone")
    if period == "WEEK" and not zone and zone_required:
        raise MarquezTextError(400, "Timezone must be specified for period 'WEEK'")
    if period is None:
        raise MarquezTextError(400, "Invalid period")
    if period == "DAY":
        return hours(now_ms())
    return days(now_ms(), zone_named(zone)) if zone else None


def _intervals(q: Query, seen: Callable[[Sequence[int]], list[int]]) -> Answer:
    buckets = _buckets(q, zone_required=False) or []
    counts = seen([b.end for b in buckets]) if buckets else []
    answer = [{"startInterval": b.start_label, "endInterval": b.end_label, "count": n}
              for b, n in zip(buckets, counts, strict=True)]  # fmt: skip
    return TextBody(JSON, json.dumps(answer))


@routes.get("/api/v1/stats/lineage-events", "Marquez: RunEvents by type per hour (DAY) or day (WEEK)",
            PERIOD, TIMEZONE, marquez=True, answer=LINEAGE_METRICS)  # fmt: skip
def marquez_stats_lineage_events(reader: LineageReader, q: Query) -> Answer:
    buckets = _buckets(q, zone_required=True) or []
    bounds = [buckets[0].start, *(b.end for b in buckets)] if buckets else []
    counts = reader.raw_events.run_event_counts(bounds)
    answer = [{"startInterval": b.start_label, "endInterval": b.end_label, "fail": c["FAIL"],
               "start": c["START"], "complete": c["COMPLETE"], "abort": c["ABORT"]}
              for b, c in zip(buckets, counts, strict=True)]  # fmt: skip
    return TextBody(JSON, json.dumps(answer))


@routes.get("/api/v1/stats/jobs", "Marquez: how many jobs were seen by the end of each hour (DAY) or day (WEEK)",
            PERIOD, TIMEZONE, marquez=True, answer=INTERVAL_METRICS)  # fmt: skip
def marquez_stats_jobs(reader: LineageReader, q: Query) -> Answer:
    return _intervals(q, reader.raw_events.jobs_seen)


@routes.get("/api/v1/stats/datasets", "Marquez: how many datasets were seen by the end of each hour or day",
            PERIOD, TIMEZONE, marquez=True, answer=INTERVAL_METRICS)  # fmt: skip
def marquez_stats_datasets(reader: LineageReader, q: Query) -> Answer:
    return _intervals(q, reader.raw_events.datasets_seen)


@routes.get("/api/v1/stats/sources", "Marquez: how many sources were seen by the end of each hour or day",
            PERIOD, TIMEZONE, marquez=True, answer=INTERVAL_METRICS)  # fmt: skip
def marquez_stats_sources(reader: LineageReader, q: Query) -> Answer:
    return _intervals(q, reader.raw_events.sources_seen)
