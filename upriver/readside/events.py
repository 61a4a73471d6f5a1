"""The raw OpenLineage events (`lineage_events`, sinks/raw_events.py) and the counts Marquez's stats show.

`EventsReader` pages the RunEvents of a time range as received (their payloads, never parsed here) with the
count of every event in the range, counts run events by type per time bucket, and counts, at the end of each
bucket, the jobs, datasets and sources seen by then:
- a job is a (namespace, name) with a run that is not a DatasetEvent's (a JobEvent's counts), first seen
  at its earliest run's start (as upriver/readside/jobs.py lists jobs);
- a dataset is a Marquez dataset (upriver/readside/datasets.py: a canonical node's namespace and name,
  its aliases included), first seen at the start of the first run naming it (its `createdAt` there);
- a source is a dataSource facet's name of a dataset in a run ("default" for a dataset sent without one,
  as Marquez files it), first seen at the start of the first run naming it (as
  upriver/readside/dataset_search.py lists sources).
Buckets are given as epoch-ms bounds; which buckets Marquez asks for is upriver/http/marquez/events.py's.
Reads `lineage_events` with FINAL (a replayed message is stored once). Never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sinks.clickhouse import quote_identifier
from upriver.readside.datasets import DEFAULT_SOURCE, DatasetsReader
from upriver.readside.queries import SqlClient

RUN_TYPES = ("FAIL", "START", "COMPLETE", "ABORT")  # the event types Marquez's lineage stats count
_IN_RANGE = (  # bounds in epoch microseconds
    "event_time < fromUnixTimestamp64Micro({before:Int64}, 'UTC')"
    " AND event_time >= fromUnixTimestamp64Micro({after:Int64}, 'UTC')"
)
# a DatasetEvent's per-dataset run (schemas/openlineage.py) is no job's
_NOT_DATASET_EVENT = (
    "NOT (status = 'OTHER' AND JSONExtractBool(facets, 'openlineage', 'designTime')"
    " AND JSONExtractString(facets, 'openlineage', 'eventType') = 'DATASET')"
)
_BUCKET = "arrayFirstIndex(e -> t < e, {ends:Array(Int64)})"  # 1-based: the first bucket ending after t


class EventsReader:
    """`<database>`'s raw events and the stats over them and over `runs`/`nodes`; the same SQL on chDB and a
    server."""

    def __init__(self, client: SqlClient, database: str) -> None:
        self._client = client
        self._database = database
        self._db = quote_identifier(database)

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    def lineage_events(
        self, before: int, after: int, limit: int, offset: int, ascending: bool = False
    ) -> tuple[list[str], int]:
        """(payloads, total): the RunEvents with `after` <= eventTime < `before` (epoch µs) as received, by
        event time (then arrival) in the direction asked, `limit` of them from `offset`; the total counts
        every event of the range, DatasetEvents and JobEvents too (Marquez's totalCount)."""
        way = "ASC" if ascending else "DESC"
        sql = (
            f"SELECT payload FROM {self._db}.lineage_events FINAL WHERE {_IN_RANGE} AND kind = 'RUN_EVENT'"
            f" ORDER BY event_time {way}, kafka_partition {way}, kafka_offset {way}"
            " LIMIT {limit:UInt64} OFFSET {offset:UInt64}"
        )
        payloads = [str(r[0]) for r in self._rows(sql, before=before, after=after, limit=limit, offset=offset)]
        total = self._rows(f"SELECT count() FROM {self._db}.lineage_events FINAL WHERE {_IN_RANGE}",
                           before=before, after=after)[0][0]  # fmt: skip
        return payloads, int(total)

    def run_event_counts(self, bounds: Sequence[int]) -> list[dict[str, int]]:
        """Per bucket [bounds[i], bounds[i+1]) of event time (epoch ms), the RunEvents of each of RUN_TYPES."""
        counts: list[dict[str, int]] = [dict.fromkeys(RUN_TYPES, 0) for _ in bounds[1:]]
        if not counts:
            return counts
        sql = (
            f"SELECT {_BUCKET} AS b, event_type, count() FROM ("
            " SELECT toUnixTimestamp64Milli(event_time) AS t, event_type"
            f" FROM {self._db}.lineage_events FINAL WHERE {_IN_RANGE}"
            "  AND kind = 'RUN_EVENT' AND event_type IN {types:Array(String)}"
            ") GROUP BY b, event_type"
        )
        found = self._rows(sql, ends=list(bounds[1:]), before=bounds[-1] * 1000, after=bounds[0] * 1000,
                           types=list(RUN_TYPES))  # fmt: skip
        for bucket, event_type, n in found:
            if bucket:
                counts[int(bucket) - 1][str(event_type)] = int(n)
        return counts

    def _cumulative(self, firsts_sql: str, ends: Sequence[int], **parameters: Any) -> list[int]:
        """Per end, how many of the things `firsts_sql` answers (one first-seen time `t`, epoch ms, each)
        were first seen before it."""
        if not ends:
            return []
        sql = f"SELECT {_BUCKET} AS b, count() FROM ({firsts_sql}) WHERE t < {{last:Int64}} GROUP BY b"
        per = dict.fromkeys(range(1, len(ends) + 1), 0)
        for bucket, n in self._rows(sql, ends=list(ends), last=ends[-1], **parameters):
            per[int(bucket)] = int(n)
        out, total = [], 0
        for i in range(1, len(ends) + 1):
            total += per[i]
            out.append(total)
        return out

    def jobs_seen(self, ends: Sequence[int]) -> list[int]:
        """Per end (epoch ms), the jobs first seen before it."""
        firsts = (
            "SELECT toUnixTimestamp64Milli(min(started_at)) AS t"
            f" FROM {self._db}.runs FINAL WHERE job_id != '' AND {_NOT_DATASET_EVENT} GROUP BY job_id"
        )
        return self._cumulative(firsts, ends)

    def datasets_seen(self, ends: Sequence[int]) -> list[int]:
        """Per end (epoch ms), the Marquez datasets first seen before it."""
        moved, namespaces, names = DatasetsReader(self._client, self._database).names().moved()
        firsts = (
            "SELECT toUnixTimestamp64Milli(min(started_at)) AS t FROM ("
            "  SELECT transform(id, {m:Array(String)}, {mns:Array(String)}, id_ns) AS ns,"
            "   transform(id, {m:Array(String)}, {mnm:Array(String)}, id_name) AS nm, started_at"
            f"  FROM {self._db}.runs FINAL ARRAY JOIN arrayConcat(output_ids, input_ids) AS id,"
            "   arrayConcat(output_namespaces, input_namespaces) AS id_ns,"
            "   arrayConcat(output_names, input_names) AS id_name"
            ") GROUP BY ns, nm"
        )
        return self._cumulative(firsts, ends, m=moved, mns=namespaces, mnm=names)

    def sources_seen(self, ends: Sequence[int]) -> list[int]:
        """Per end (epoch ms), the sources (dataSource names, DEFAULT_SOURCE for a dataset without one) first
        seen before it."""
        name = "if(position(f, '\"dataSource\"') > 0, JSONExtractString(f, 'dataSource', 'name'), '')"
        firsts = (
            "SELECT toUnixTimestamp64Milli(min(started_at)) AS t FROM ("
            f" SELECT started_at, arrayJoin(arrayMap(f -> {name}, arrayConcat(input_facets, output_facets))) AS s"
            f" FROM {self._db}.runs FINAL"
            ") GROUP BY if(s = '', {default:String}, s)"
        )
        return self._cumulative(firsts, ends, default=DEFAULT_SOURCE)
