"""Marquez's datasets and their versions over Upriver's tables (docs/marquez.md, Datasets).

A Marquez dataset is listed and answered under every name it has (R__Datasets_view.sql joins each
dataset_symlinks row: the name a producer sent and each `symlinks` identifier), its namespace and name echoed
as asked; its content is its alias group's (upriver/readside/aliases.py: every name Upriver joined), and
nodes of other kinds with the same namespace and name are the same Marquez dataset. Its physical name is the
name a producer last sent it under (DatasetDao.upsert sets physical_name on every event). Times come from
the `nodes` table; facets from the artifacts' facet documents in `runs`: each facet's latest value sent since
the latest write (Marquez shows the facets of the dataset's current version, and a write starts a version).
A version is one run that wrote the dataset (any status: Marquez makes one on a write's first event) or a
DatasetEvent, plus the version Marquez makes when the dataset is read before it is ever written; runs that
wrote the same producer version are one version. Those rules, and which version a run's input read, are
upriver/readside/dataset_versions.py's.

SQL only, through the client given: a list page costs three queries whatever its size (names with their
groups' times and the total, facets, column edges) after the alias read every request makes (a tiny table);
a versions page adds the three of its runs' datasets (`resolve_runs`). The column edges are found through the
edges' dst projection (a range `<id>#` .. `<id>$` per dataset). The JSON shapes are
upriver/http/marquez/dataset_shapes.py's. Never writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from schemas import identity
from sinks.clickhouse import quote_identifier
from upriver.readside.aliases import Aliases
from upriver.readside.dataset_search import DATASET_EVENT_JOB, CatalogSearch
from upriver.readside.dataset_versions import (
    AT,
    DATASET_EVENT,
    LAST,
    Names,
    RunDatasets,
    node_key,
    sent_name,
    versions_sql,
)
from upriver.readside.jobs import RUN_WIDTH, RunRecord, run_record
from upriver.readside.queries import SqlClient

# Marquez's OUTPUT facets (and Upriver's own bookkeeping) are not the dataset's facets
OUTPUT_FACETS = frozenset({"outputStatistics", "icebergCommitReport"})
DEFAULT_SOURCE = "default"  # Marquez's source of a dataset first sent without a dataSource facet
ColumnEdge = tuple[str, str, str, str | None]  # (src column id, output field, type, subtype), canonical


@dataclass(frozen=True)
class CatalogDataset:
    """One Marquez dataset under one of its names (`namespace`, `name`: as listed or asked): its group's key
    (the canonical (namespace, name): its tags and version ids are the group's), every node id it answers
    for, times (epoch ms) and current state: facets, source, physical name, and the current version (the
    latest write's run and producer version, or, never written, the first read's producer version with run
    "")."""

    namespace: str
    name: str
    ids: tuple[str, ...]
    created_at: int
    updated_at: int
    last_written: int | None
    key: tuple[str, str] = ("", "")
    physical_name: str = ""
    facets: dict[str, Any] = field(default_factory=dict)
    source: str = DEFAULT_SOURCE
    current_run: str = ""
    current_version: str = ""
    columns: list[ColumnEdge] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetVersionRow:
    """A version: created (the run's start), the producer's version ("" when none), the dataset's facets as
    the run sent them, the run (None for a first read's version), and whether the run is a design-time
    declaration (a JobEvent's or DatasetEvent's: Marquez records no run for those)."""

    run_id: str
    version: str
    created_at: int
    facets: dict[str, Any]
    run: RunRecord | None
    design_time: bool


def clean_facets(raw: dict[str, Any]) -> dict[str, Any]:
    """Dataset facets as Marquez keeps them: Upriver's bookkeeping and output-only facets left out."""
    return {k: v for k, v in sorted(raw.items()) if k and not k.startswith("upriver") and k not in OUTPUT_FACETS}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _doc(text: str) -> dict[str, Any]:
    found = _value(text) if text else None
    return found if isinstance(found, dict) else {}


class StateRow(NamedTuple):
    """What `_states` reads per node id and facet key ever sent for it (times in epoch ms)."""

    key: str  # the facet ('' for a node sent without facets)
    value: str  # its latest value (JSON text)
    at: int  # when that was sent (the run's end, else start)
    source: str  # the first dataSource value sent (key 'dataSource' only)
    source_at: int  # the start of the run that sent it
    first: int  # the start of the first run naming the node
    written_at: int  # the latest write (0: never written)
    run: str  # its run
    version: str  # its producer version
    read_version: str  # the producer version of the first run naming the node
    last: int = 0  # the latest run naming the node (its end, else start)
    named: tuple[str, str] = ("", "")  # that run's `upriverAliases` and `symlinks` facets of it (JSON text)


def merge_states(rows: Iterable[StateRow]) -> tuple[dict[str, Any], str, str, str, int | None]:
    """(current facets, source, current run, current producer version, created) of a dataset from its names'
    `_states` rows: each facet's latest value when sent since the latest write; the source its first event
    named (Marquez keeps a dataset's first source); created at the first run's start."""
    rows = list(rows)
    if not rows:
        return {}, DEFAULT_SOURCE, "", "", None
    written = max(r.written_at for r in rows)
    latest: dict[str, tuple[int, str]] = {}
    for r in rows:
        if r.key and (r.key not in latest or (r.at, r.value) > latest[r.key]):
            latest[r.key] = (r.at, r.value)
    facets = {k: _value(v) for k, (at, v) in latest.items() if at >= written}
    if written:
        run, version = max((r.run, r.version) for r in rows if r.written_at == written)
    else:
        run, version = "", min((r.first, r.read_version) for r in rows)[1]
    first = min(r.first for r in rows)
    sources = sorted((r.source_at, r.source) for r in rows if r.key == "dataSource")
    source = DEFAULT_SOURCE
    if sources and sources[0][0] == first:
        name = _doc(sources[0][1]).get("name")
        source = name if isinstance(name, str) and name else DEFAULT_SOURCE
    return clean_facets(facets), source, run, version, first


def physical_name(states: dict[str, list[StateRow]], ids: Iterable[str], fallback: str) -> str:
    """The name a producer last sent the dataset under (Marquez's physical_name), from its names' `_states`
    rows: of the node named by the latest run, as that run sent it."""
    latest = max(((rows[0].last, node, rows[0].named) for node in ids if (rows := states.get(node))), default=None)
    if latest is None:
        return fallback
    _, node, (aliases, symlinks) = latest
    return sent_name(node_key(node), _value(aliases) if aliases else None, _value(symlinks) if symlinks else None)[1]


def _renamed(column: str, named: dict[str, tuple[str, str]]) -> str:
    """A column id under its dataset's name in `named` (canonical node -> (namespace, name)), if there."""
    node = identity.node_of(column)
    if node not in named:
        return column
    ref = identity.parse(column)
    return identity.node_id(ref.kind, *named[node], ref.field)


class DatasetsReader:
    """Marquez's datasets and dataset versions over `<database>`."""

    def __init__(self, client: SqlClient, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)
        self.search = CatalogSearch(client, database)  # sources, search (upriver/readside/dataset_search.py)
        self._run_datasets = RunDatasets(client, database)

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    def names(self) -> Names:
        """Every alias group (tiny: read once per request)."""
        sql = f"SELECT alias_id, node_id FROM {self._db}.aliases GROUP BY alias_id, node_id"
        pairs = [(str(a), str(n)) for a, n in self._rows(sql)]
        return Names(Aliases(pairs), tuple(sorted({n for pair in pairs for n in pair})))

    def moved(self) -> list[str]:
        """The alias ids answered by another node (search leaves them out)."""
        return self.names().moved()[0]

    # ---- datasets -------------------------------------------------------------------------------

    def _listing(self, names: Names, namespace: str, where: str, limit: int, offset: int, **bound: Any
                 ) -> tuple[int, list[CatalogDataset]]:  # fmt: skip
        """(total, page) of the names in `namespace` matching `where` (over nm), by name: every node so
        named and every alias member (R__Datasets_view.sql), each with its groups' node ids and times."""
        members, canonical, spaces, named = names.listed()
        here = [(n, c) for ns, n, c in zip(spaces, named, canonical, strict=True) if ns == namespace]
        group = "transform(node_id, {m:Array(String)}, {mc:Array(String)}, node_id)"
        sql = (
            "SELECT nm, groupUniqArray(g), min(fs), max(ls), max(lw), count() OVER () FROM ("
            "  SELECT nm, g FROM ("
            f"   SELECT any(name) AS nm, {group} AS g FROM {self._db}.nodes WHERE namespace = {{ns:String}}"
            "   GROUP BY node_id)"
            "  UNION ALL SELECT x.1, x.2 FROM (SELECT arrayJoin(arrayZip({hn:Array(String)}, {hg:Array(String)})) AS x)"
            ") AS named INNER JOIN ("
            f"  SELECT {group} AS g, min(f) AS fs, max(l) AS ls, max(w) AS lw FROM ("
            "   SELECT node_id, toUnixTimestamp64Milli(min(first_seen)) AS f,"
            "    toUnixTimestamp64Milli(max(last_seen)) AS l, toUnixTimestamp64Milli(max(last_written)) AS w"
            f"   FROM {self._db}.nodes WHERE namespace = {{ns:String}} OR node_id IN {{m:Array(String)}}"
            "   GROUP BY node_id"
            "  ) GROUP BY g"
            ") AS st USING (g)"
            f" WHERE {where} GROUP BY nm ORDER BY nm LIMIT {{limit:UInt64}} OFFSET {{offset:UInt64}}"
        )
        rows = self._rows(sql, ns=namespace, m=members, mc=canonical, hn=[n for n, _ in here],
                          hg=[g for _, g in here], limit=limit, offset=offset, **bound)  # fmt: skip
        page = []
        for nm, groups, fs, ls, lw, _ in rows:
            found = sorted(str(g) for g in groups)
            ids = tuple(sorted(names.aliases.expand(found)))
            page.append(CatalogDataset(namespace, str(nm), ids, int(fs), int(ls), int(lw) or None,
                                       key=min(node_key(g) for g in found), physical_name=str(nm)))  # fmt: skip
        return (int(rows[0][5]) if rows else 0), page

    def page(self, namespace: str, limit: int, offset: int) -> tuple[int, list[CatalogDataset]]:
        """(totalCount, the dataset names of `namespace` by name from `offset`, at most `limit`, with their
        state)."""
        names = self.names()
        total, page = self._listing(names, namespace, "1", limit, offset)
        if not page and (offset or not limit):
            total = self._listing(names, namespace, "1", 1, 0)[0]
        return total, self._with_state(page, names)

    def find(self, namespace: str, name: str) -> CatalogDataset | None:
        """The dataset answering as (namespace, name): sent so, or one of its other names; None if never."""
        names = self.names()
        _, page = self._listing(names, namespace, "nm = {nm:String}", 1, 0, nm=name)
        return self._with_state(page, names)[0] if page else None

    def _with_state(self, page: list[CatalogDataset], names: Names) -> list[CatalogDataset]:
        if not page:
            return []
        ids = sorted({n for ds in page for n in ds.ids})
        states = self._states(ids)
        columns = self._columns(ids, names.aliases)
        sources = sorted({identity.node_of(c[0]) for found in columns.values() for c in found})
        named = self.sent_names(sources, names.aliases)  # an input dataset under the name Marquez gives it
        columns = {n: [(_renamed(c[0], named), *c[1:]) for c in found] for n, found in columns.items()}
        out = []
        for ds in page:
            facets, source, run, version, first = merge_states([r for n in ds.ids for r in states.get(n, ())])
            cols = sorted({c for n in ds.ids for c in columns.get(n, ())}, key=str)
            created = ds.created_at if first is None else first
            physical = physical_name(states, ds.ids, ds.name)
            out.append(replace(ds, created_at=created, facets=facets, source=source, current_run=run,
                               current_version=version, columns=cols, physical_name=physical))  # fmt: skip
        return out

    def _states(self, names: list[str]) -> dict[str, list[StateRow]]:
        """node id -> its `StateRow`s, one per facet key ever sent for it (one with key '' when none)."""
        sql = (
            "SELECT id, kv.1 AS k, argMax(kv.2, (t, run_id)), max(t), argMinIf(kv.2, (t0, run_id), k = 'dataSource'),"
            " if(k = 'dataSource', min(t0), 0), any(first), any(w), any(wrun), any(wver), any(rver), any(last),"
            " any(nmd) FROM ("
            "  SELECT id, t, t0, run_id, doc, min(t0) OVER (PARTITION BY id) AS first,"
            "   max(t) OVER (PARTITION BY id) AS last, argMax((JSONExtractRaw(doc, 'upriverAliases'),"
            "    JSONExtractRaw(doc, 'symlinks')), (t, run_id)) OVER (PARTITION BY id) AS nmd,"
            "   max(if(written, t, 0)) OVER (PARTITION BY id) AS w,"
            "   argMax(if(written, (run_id, v), ('', '')), (if(written, t, 0), run_id)) OVER (PARTITION BY id) AS wr,"
            "   wr.1 AS wrun, wr.2 AS wver, argMin(v, (t0, run_id)) OVER (PARTITION BY id) AS rver FROM ("
            f"   SELECT {AT}[i] AS id, arrayConcat(output_facets, input_facets)[i] AS doc,"
            "    arrayConcat(output_versions, input_versions)[i] AS v, toUnixTimestamp64Milli(started_at) AS t0,"
            "    toUnixTimestamp64Milli(coalesce(ended_at, started_at)) AS t, run_id,"
            f"    i <= length(output_ids) OR ({DATASET_EVENT}) AS written"
            f"   FROM {self._db}.runs FINAL ARRAY JOIN arrayEnumerate({AT}) AS i"
            "   WHERE (arrayExists(x -> x IN {n:Array(String)}, output_ids)"
            " OR arrayExists(x -> x IN {n:Array(String)}, input_ids))"
            f"    AND {AT}[i] IN {{n:Array(String)}}"
            "  )"
            ") LEFT ARRAY JOIN JSONExtractKeysAndValuesRaw(doc) AS kv GROUP BY id, k"
        )
        out: dict[str, list[StateRow]] = {}
        for nid, key, value, at, src, src_at, first, w, wrun, wver, rver, last, nmd in self._rows(
            sql, n=names, dse=DATASET_EVENT_JOB
        ):
            row = StateRow(str(key), str(value), int(at), str(src), int(src_at), int(first), int(w), str(wrun),
                           str(wver), str(rver), int(last), (str(nmd[0]), str(nmd[1])))  # fmt: skip
            out.setdefault(str(nid), []).append(row)
        return out

    def _columns(self, names: list[str], aliases: Aliases) -> dict[str, list[ColumnEdge]]:
        """node id -> the valid column edges into its fields (the dst ranges `<id>#…` use the edges' dst
        projection; then every revision of those rows decides, as the lineage walk decides)."""
        ranges = " OR ".join(f"(dst > {{lo{i}:String}} AND dst < {{hi{i}:String}})" for i in range(len(names)))
        bound = {f"lo{i}": f"{n}#" for i, n in enumerate(names)} | {f"hi{i}": f"{n}$" for i, n in enumerate(names)}
        sql = (
            "SELECT src, dst, edge_type, sub FROM ("
            "  SELECT src, dst, edge_type, run_id, argMax(subtype, revision) AS sub,"
            "   argMax(run_status, revision) AS st"
            f"  FROM {self._db}.edges WHERE (src, dst, edge_type, run_id) IN ("
            f"   SELECT src, dst, edge_type, run_id FROM {self._db}.edges WHERE {ranges})"
            "  AND startsWith(edge_type, 'COLUMN_') GROUP BY src, dst, edge_type, run_id"
            "  HAVING st NOT IN ('FAIL', 'ABORT')"
            ") GROUP BY src, dst, edge_type, sub"
        )
        out: dict[str, list[ColumnEdge]] = {}
        for src, dst, etype, sub in self._rows(sql, **bound):
            node, column = identity.node_of(str(dst)), identity.field_of(str(dst))
            if column:  # Marquez has no dataset-level entries
                edge = (aliases.canonical(str(src)), column, str(etype).removeprefix("COLUMN_"), sub)
                out.setdefault(node, []).append(edge)
        return out

    # ---- versions -------------------------------------------------------------------------------

    def versions(self, ds: CatalogDataset, limit: int, offset: int) -> tuple[int, list[DatasetVersionRow]]:
        """(totalCount, the dataset's versions newest created first, from `offset`, at most `limit`), each
        version's run with its datasets as `resolve_runs` gives them."""
        bound = {"n": list(ds.ids), "dse": DATASET_EVENT_JOB, "last": LAST, "limit": limit, "offset": offset}
        rows = self._rows(versions_sql(self._db, "*", True), **bound)
        if not rows and (offset or not limit):
            return self.versions(ds, 1, 0)[0], []
        found = [_version(row) for row in rows]
        runs = iter(self.resolve_runs([v.run for v in found if v.run is not None]))
        found = [v if v.run is None else replace(v, run=next(runs)) for v in found]
        return (int(rows[0][-1]) if rows else 0), found

    def version_keys(self, ds: CatalogDataset) -> list[tuple[str, str]]:
        """(run id, "" for a first read's version; producer version) of every version, newest first."""
        bound = {"n": list(ds.ids), "dse": DATASET_EVENT_JOB, "last": LAST}
        sql = versions_sql(self._db, "run_id, v, w", False)
        return [(str(r) if w else "", str(v)) for r, v, w, _ in self._rows(sql, **bound)]

    def version(self, ds: CatalogDataset, index: int) -> DatasetVersionRow | None:
        """The version at `index` of `version_keys`' order."""
        return next(iter(self.versions(ds, 1, index)[1]), None)

    def sent_names(self, nodes: Iterable[str], aliases: Aliases) -> dict[str, tuple[str, str]]:
        """canonical node -> the (namespace, name) its group was first sent under, for the nodes whose group
        has other names (a node alone is named as sent already): Marquez names a dataset by the name of the
        event that created it (OpenLineageDao.upsertLineageDataset: the primary dataset_symlinks row; a
        `symlinks` identifier only points at it), so the earliest run naming any member decides, read back
        through `sent_name`. One query, none when no node has other names."""
        groups = {n: aliases.names(n) for n in nodes if len(aliases.names(n)) > 1}
        if not groups:
            return {}
        sql = (
            "SELECT id, argMin((JSONExtractRaw(doc, 'upriverAliases'), JSONExtractRaw(doc, 'symlinks')),"
            " (t0, run_id)), min((t0, run_id)) FROM ("
            f" SELECT {AT}[i] AS id, arrayConcat(output_facets, input_facets)[i] AS doc,"
            "  toUnixTimestamp64Milli(started_at) AS t0, run_id"
            f" FROM {self._db}.runs FINAL ARRAY JOIN arrayEnumerate({AT}) AS i"
            " WHERE (arrayExists(x -> x IN {n:Array(String)}, output_ids)"
            " OR arrayExists(x -> x IN {n:Array(String)}, input_ids))"
            f"  AND {AT}[i] IN {{n:Array(String)}}"
            ") GROUP BY id"
        )
        members = sorted({m for names in groups.values() for m in names})
        first: dict[str, tuple[tuple[int, str], tuple[str, str]]] = {}
        for nid, (named, links), (t0, run) in self._rows(sql, n=members):
            node = str(nid)
            sent = sent_name(node_key(node), _value(named) if named else None, _value(links) if links else None)
            first[node] = ((int(t0), str(run)), sent)
        out = {}
        for node, names in groups.items():
            seen = [first[m] for m in names if m in first]
            out[node] = min(seen)[1] if seen else node_key(node)
        return out

    def resolve_runs(self, runs: Sequence[RunRecord]) -> list[RunRecord]:
        """The runs with their inputs and outputs named as their Marquez datasets and each input with the
        dataset version it read (upriver/readside/dataset_versions.py): three queries for any number."""
        return self._run_datasets.resolve(runs, self.names()) if runs else []


def _version(row: Sequence[Any]) -> DatasetVersionRow:
    """A `versions_sql('*')` row: the run's columns (upriver/readside/jobs.py's), then t0, doc, v, design, w."""
    run = run_record(row)
    t0, doc, version, design, written = row[RUN_WIDTH : RUN_WIDTH + 5]
    return DatasetVersionRow(
        run_id=run.run_id if written else "",
        version=str(version),
        created_at=int(t0),
        facets=clean_facets(_doc(str(doc))),
        run=run if written and not design else None,
        design_time=bool(design),
    )
