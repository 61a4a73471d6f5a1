"""A run's run facets and job facets as Marquez answers them: merged over every event of the run, read from
the raw OpenLineage events as received (`lineage_events`, sinks/raw_events.py). Never writes.

Marquez stores one row per (event, facet name) (RunFacetsDao/JobFacetsDao `insert*FacetsFor`) and answers a
run's facets as those rows in ascending event time folded into one object, a later row replacing an earlier
one of the same name (`JSON_AGG(facet ORDER BY lineage_event_time)`, MapperUtils.toFacetsOrNull); so every
facet name any event of the run carried is there, with the value of the latest event (by eventTime, not by
arrival) that carried it. Events with the same eventTime fold in arrival order (the order Marquez inserts
their rows). Its write path also:
- drops the run facet `spark_unknown` (any case) (RunFacetsDao.SPARK_UNKNOWN);
- keeps the first `spark.logicalPlan` a run received and skips the later ones (RunFacetsDao.SPARK_LOGICAL_PLAN,
  `runFacetExists`): that facet is the first-received event's, whatever its event time;
- reads a run facet `parentRun` as `parent` (LineageEvent.RunFacet's @JsonAlias, the Airflow integration's old
  name);
- has no row for a facet whose value is null (Jackson's NON_NULL), so a null never replaces a value.
The same normalisation applies to a run's stored facets (`normalised`), which stand in when a run has no raw
events (Upriver's own Avro emitters; events past UPRIVER_RAW_EVENT_RETENTION_DAYS).

One query for any number of runs (`run_id IN (...)`, sinks/ddl/008's index skips the other granules); a
replayed message (the same Kafka partition and offset) counts once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sinks.clickhouse import quote_identifier
from upriver.readside.queries import SqlClient

SPARK_UNKNOWN = "spark_unknown"
SPARK_LOGICAL_PLAN = "spark.logicalplan"  # compared ignoring case, as RunFacetsDao does
RUN, JOB = "run", "job"  # the event's object holding the facets


@dataclass(frozen=True, slots=True)
class MergedFacets:
    """A run's facets merged over its raw events: run facets (`run.facets`) and job facets (`job.facets`)."""

    run: dict[str, Any] = field(default_factory=dict, hash=False)
    job: dict[str, Any] = field(default_factory=dict, hash=False)


def normalised(facets: Mapping[str, Any], side: str) -> dict[str, Any]:
    """One event's facets of `side` (RUN or JOB) as Marquez records them (the module's rules; the
    spark.logicalPlan rule spans events and is `merge`'s)."""
    read: dict[str, Any] = {}
    for name, value in facets.items():  # Jackson fills the model in document order: a later alias wins
        read["parent" if side == RUN and name == "parentRun" else name] = value
    return {k: v for k, v in read.items() if v is not None and not (side == RUN and k.lower() == SPARK_UNKNOWN)}


def _facets(doc: Mapping[str, Any], side: str) -> dict[str, Any]:
    part = doc.get(side)
    facets = part.get("facets") if isinstance(part, dict) else None
    return normalised(facets, side) if isinstance(facets, dict) else {}


def merge(docs: Iterable[tuple[Any, Mapping[str, Any]]]) -> MergedFacets:
    """The merged facets of one run's events, given as (arrival key, event) in Marquez's fold order:
    ascending event time, then arrival."""
    run: dict[str, Any] = {}
    job: dict[str, Any] = {}
    plans: dict[str, tuple[Any, Any]] = {}  # a spark.logicalPlan name -> (arrival, value) of its first arrival
    for arrival, doc in docs:
        for name, value in _facets(doc, RUN).items():
            if name.lower() == SPARK_LOGICAL_PLAN and (name not in plans or arrival < plans[name][0]):
                plans[name] = (arrival, value)
            run[name] = value
        job.update(_facets(doc, JOB))
    for name, (_, value) in plans.items():
        run[name] = value
    return MergedFacets(run, job)


def _event(payload: str) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):  # the sink keeps only JSON objects; a damaged row reads as no facets
        return {}
    return doc if isinstance(doc, dict) else {}


class RunFacetsReader:
    """The merged facets of runs from `<database>`.lineage_events."""

    def __init__(self, client: SqlClient, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)

    def merged(self, run_ids: Sequence[str]) -> dict[str, MergedFacets]:
        """run id -> its merged facets, for the asked runs that have raw RunEvents (one query)."""
        ids = sorted({r for r in run_ids if r})
        if not ids:
            return {}
        sql = (
            "SELECT run_id, payload, toUnixTimestamp64Milli(received_at) AS r, kafka_partition, kafka_offset"
            f" FROM {self._db}.lineage_events"
            " WHERE run_id IN {ids:Array(String)} AND kind = 'RUN_EVENT'"
            " ORDER BY run_id, event_time, r, kafka_partition, kafka_offset"
            " LIMIT 1 BY run_id, kafka_partition, kafka_offset"
        )
        by_run: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
        rows = self._client.query(sql, parameters={"ids": ids}).result_rows
        for run_id, payload, received, partition, offset in rows:
            arrival = (int(received), int(partition), int(offset))
            by_run.setdefault(str(run_id), []).append((arrival, _event(str(payload))))
        return {run_id: merge(docs) for run_id, docs in by_run.items()}
