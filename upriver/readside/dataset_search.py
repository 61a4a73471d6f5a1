"""Marquez's sources and search over Upriver's tables (docs/marquez.md). SQL only, never writes.

- Sources: the `dataSource` facet's name (and uri) of every artifact of every run, and Marquez's `default`
  source for artifacts sent without one.
- `/api/v1/search`: datasets (under each of their names, as datasets_view lists them) and jobs whose name
  matches `q` as Marquez matches it (`ILIKE '%q%'`: `%` and `_` in q are wildcards), filtered by type,
  namespace and updated-at dates.
- `/api/v2beta/search/{jobs,datasets}` (Marquez answers them from OpenSearch): the latest facet documents
  of the datasets and jobs whose names or documents contain `q`; upriver/http/marquez/open_search.py
  picks the fields that match and highlights them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sinks.clickhouse import quote_identifier
from upriver.readside.queries import SqlClient

DATASET_EVENT_JOB = "openlineage.dataset-event"  # schemas/openlineage.py: a DatasetEvent's per-dataset run
_NOT_DATASET_EVENT = (
    "NOT (job_name = {dse:String} AND JSONExtractString(facets, 'openlineage', 'eventType') = 'DATASET')"
)
SORTS = {"NAME": "nm, ns, type", "UPDATE_AT": "upd DESC, nm, ns, type"}


@dataclass(frozen=True)
class SourceRow:
    name: str
    created_at: int  # epoch ms
    updated_at: int
    uri: str  # as sent ("" when the facet had none)


@dataclass(frozen=True)
class SearchHitRow:
    type: str  # DATASET or JOB
    namespace: str
    name: str
    updated_at: int


@dataclass(frozen=True)
class DocumentRow:
    """The latest document of a dataset or job containing the query: the run, its status event type and
    facets (run facets with `jobFacets` for a job; the artifact's facets for a dataset, and whether it was
    the run's output)."""

    namespace: str
    name: str
    run_id: str
    facets: str
    run_facets: str
    output: bool


class CatalogSearch:
    """Sources, search and the v2beta search documents over `<database>`."""

    def __init__(self, client: SqlClient, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    def sources(self, limit: int, offset: int, name: str | None = None) -> list[SourceRow]:
        """Every source by name (or the one named `name`): first and last time an artifact named it, and
        the latest uri sent for it."""
        having = "HAVING src = {name:String}" if name is not None else ""
        sql = (
            "SELECT src, min(t0), max(t), argMaxIf(uri, t, n != '') FROM ("
            "  SELECT JSONExtractString(doc, 'dataSource', 'name') AS n, if(n = '', {default:String}, n) AS src,"
            "   JSONExtractString(doc, 'dataSource', 'uri') AS uri, t0, t FROM ("
            "    SELECT arrayJoin(arrayConcat(output_facets, input_facets)) AS doc,"
            "     toUnixTimestamp64Milli(started_at) AS t0, toUnixTimestamp64Milli(coalesce(ended_at, started_at)) AS t"
            f"    FROM {self._db}.runs FINAL WHERE length(output_ids) + length(input_ids) > 0"
            "  )"
            f") GROUP BY src {having} ORDER BY src LIMIT {{limit:UInt64}} OFFSET {{offset:UInt64}}"
        )
        bound = {"default": "default", "limit": limit, "offset": offset, "name": name or ""}
        return [SourceRow(str(s), int(a), int(b), str(u)) for s, a, b, u in self._rows(sql, **bound)]

    def search(
        self, query: str, kind: str | None, sort: str, limit: int, namespace: str | None,
        before: int | None, after: int | None, names: tuple[list[str], list[str], list[str], list[str]],
    ) -> list[SearchHitRow]:  # fmt: skip
        """Datasets and jobs whose name is ILIKE '%query%' (Marquez's SearchDao), at most `limit`, sorted by
        `sort` (NAME or UPDATE_AT: newest first). A dataset matches under each of its names (SearchDao reads
        datasets_view): the nodes' and those of `names` (`Names.listed()`: alias ids, their canonical ids,
        namespaces and names), updated when its group was last seen."""
        where = ["1"]
        if kind is not None:
            where.append("type = {kind:String}")
        if namespace is not None:
            where.append("ns = {ns:String}")
        if before is not None:
            where.append("upd < {before:Int64}")
        if after is not None:
            where.append("upd > {after:Int64}")
        group = "transform(node_id, {m:Array(String)}, {mc:Array(String)}, node_id)"
        sql = (
            "SELECT type, ns, nm, upd FROM ("
            "  SELECT 'DATASET' AS type, ns, nm, max(st.upd) AS upd FROM ("
            f"   SELECT any(namespace) AS ns, any(name) AS nm, {group} AS g FROM {self._db}.nodes"
            "    WHERE name ILIKE {pattern:String} GROUP BY node_id"
            "   UNION ALL SELECT x.1, x.2, x.3 FROM ("
            "    SELECT arrayJoin(arrayZip({mns:Array(String)}, {mnm:Array(String)}, {mc:Array(String)})) AS x"
            "   ) WHERE x.2 ILIKE {pattern:String}"
            "  ) AS named INNER JOIN ("
            f"   SELECT {group} AS g, max(l) AS upd FROM ("
            "    SELECT node_id, toUnixTimestamp64Milli(max(last_seen)) AS l"
            f"    FROM {self._db}.nodes WHERE name ILIKE {{pattern:String}} OR node_id IN {{m:Array(String)}}"
            "    GROUP BY node_id"
            "   ) GROUP BY g"
            "  ) AS st USING (g) GROUP BY ns, nm"
            "  UNION ALL"
            "  SELECT 'JOB' AS type, job_namespace AS ns, job_name AS nm,"
            "   toUnixTimestamp64Milli(max(coalesce(ended_at, started_at))) AS upd"
            f"  FROM {self._db}.runs WHERE job_name ILIKE {{pattern:String}} AND {_NOT_DATASET_EVENT}"
            "  GROUP BY job_namespace, job_name"
            f") WHERE {' AND '.join(where)} ORDER BY {SORTS[sort]} LIMIT {{limit:UInt64}}"
        )
        members, canonical, spaces, named = names
        bound = {"pattern": f"%{query}%", "m": members, "mc": canonical, "mns": spaces, "mnm": named,
                 "dse": DATASET_EVENT_JOB, "kind": kind or "", "ns": namespace or "", "before": before or 0,
                 "after": after or 0, "limit": limit}  # fmt: skip
        return [SearchHitRow(str(t), str(ns), str(nm), int(u)) for t, ns, nm, u in self._rows(sql, **bound)]

    def dataset_documents(self, query: str, moved: list[str], limit: int) -> list[DocumentRow]:
        """Per dataset whose namespace, name or a facet document contains `query` (case-insensitive), the
        latest such document (its run, the run's facets, whether it was an output), at most `limit`."""
        sql = (
            "SELECT any(ns), any(nm), argMax(run_id, k), argMax(doc, k), argMax(facets, k), argMax(out, k) FROM ("
            "  SELECT arrayConcat(output_ids, input_ids)[i] AS id,"
            "   arrayConcat(output_namespaces, input_namespaces)[i] AS ns,"
            "   arrayConcat(output_names, input_names)[i] AS nm, arrayConcat(output_facets, input_facets)[i] AS doc,"
            "   i <= length(output_ids) AS out, run_id, facets, (coalesce(ended_at, started_at), run_id) AS k"
            f"  FROM {self._db}.runs FINAL ARRAY JOIN arrayEnumerate(arrayConcat(output_ids, input_ids)) AS i"
            "  WHERE positionCaseInsensitive(nm, {q:String}) > 0 OR positionCaseInsensitive(ns, {q:String}) > 0"
            "   OR positionCaseInsensitive(doc, {q:String}) > 0 OR positionCaseInsensitive(run_id, {q:String}) > 0"
            ") WHERE id NOT IN {moved:Array(String)} GROUP BY id"
            " ORDER BY lower(any(nm)) != lower({q:String}), positionCaseInsensitive(any(nm), {q:String}) = 0,"
            " any(nm), any(ns) LIMIT {limit:UInt64}"
        )
        rows = self._rows(sql, q=query, moved=moved, limit=limit)
        return [DocumentRow(str(a), str(b), str(r), str(d), str(f), bool(o)) for a, b, r, d, f, o in rows]

    def job_documents(self, query: str, limit: int) -> list[DocumentRow]:
        """Per job whose namespace, name or latest run's facets contain `query`, that latest run and facets."""
        sql = (
            "SELECT job_namespace, job_name, argMax(run_id, k), argMax(facets, k) FROM ("
            "  SELECT job_namespace, job_name, run_id, facets, (coalesce(ended_at, started_at), run_id) AS k"
            f"  FROM {self._db}.runs FINAL WHERE {_NOT_DATASET_EVENT}"
            "   AND (positionCaseInsensitive(job_name, {q:String}) > 0 OR positionCaseInsensitive(job_namespace,"
            "    {q:String}) > 0 OR positionCaseInsensitive(facets, {q:String}) > 0 OR run_id = {q:String})"
            ") GROUP BY job_namespace, job_name"
            " ORDER BY lower(job_name) != lower({q:String}), positionCaseInsensitive(job_name, {q:String}) = 0,"
            " job_name, job_namespace LIMIT {limit:UInt64}"
        )
        rows = self._rows(sql, q=query, dse=DATASET_EVENT_JOB, limit=limit)
        return [DocumentRow(str(ns), str(nm), str(r), "", str(f), False) for ns, nm, r, f in rows]
