"""Marquez dataset versions: which runs are a dataset's versions (the list GET .../datasets/{ds}/versions
answers), and which of them each run's input read (a Run's inputDatasetVersions), so that every version a
run names is one the dataset's versions list holds (docs/marquez.md, Datasets).

A Marquez dataset's content is its alias group's (upriver/readside/aliases.py; nodes of other kinds with the
same namespace and name belong to it too), answered under each of its names (R__Datasets_view.sql: one row per
dataset_symlinks name). Its versions: every run that wrote it (any status) or a DatasetEvent, one per producer
version, else per run; plus, when it was read before it was ever written, its first read's (run ""). Marquez
links a run's input to the dataset version that was current when the run read it
(OpenLineageDao.upsertLineageDataset reads the dataset's current version for an input, and makes one only
when there is none); here that is:
- the version of the producer version the input names, when the dataset has a version of it (the reader
  said which it read);
- else the newest version created (its run's start) before the run started: writes started earlier, else
  the first read's version;
- else the dataset's oldest version (the run started with, or before, everything the list holds).
A run's inputs and outputs are named as the producer sent them in that run (RunDao names a run's dataset
versions by dataset_versions.namespace_name/dataset_name, the event's own namespace and name), which
Upriver stored as the node's name beside an `upriverAliases` facet (`sent_name`); each resolved artifact
carries its group's canonical node id (its versions' ids are the group's) and every name of its group (a
job's inputs and outputs list each: JobVersionDao.findCurrentInputOutputDatasetsFor joins datasets_view), so
run -> dataset -> versions follows without a 404 under any of those names.

Through the client given: one query for a page of runs' datasets' node ids, one for the candidate versions of
those datasets; which version each input read is then found in Python (`read_versions`: by bisection of the
runs' starts over each dataset's versions). Never writes.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from schemas import identity
from sinks.clickhouse import quote_identifier
from upriver.readside.aliases import Aliases
from upriver.readside.dataset_search import DATASET_EVENT_JOB
from upriver.readside.jobs import RUN_COLUMNS, Artifact, RunRecord
from upriver.readside.queries import SqlClient

LAST = 2**63 - 1
AT = "arrayConcat(output_ids, input_ids)"
# whether a run row is a DatasetEvent's (its dataset, stored as an input, is written)
DATASET_EVENT = "job_name = {dse:String} AND JSONExtractString(facets, 'openlineage', 'eventType') = 'DATASET'"


@dataclass(frozen=True)
class Names:
    """A request's alias groups, and every id named in an alias pair."""

    aliases: Aliases
    members: tuple[str, ...]

    def moved(self) -> tuple[list[str], list[str], list[str]]:
        """Every alias id whose canonical node is another one, with that node's namespace and name."""
        ids, namespaces, names = [], [], []
        for m in self.members:
            canonical = self.aliases.canonical(m)
            if canonical != m and identity.is_id(canonical):
                ref = identity.parse(canonical)
                ids.append(m)
                namespaces.append(ref.namespace)
                names.append(ref.name)
        return ids, namespaces, names

    def listed(self) -> tuple[list[str], list[str], list[str], list[str]]:
        """(member ids, their canonical ids, their namespaces, their names) of every id named in an alias pair:
        each is a name its dataset answers under."""
        members = [m for m in self.members if identity.is_id(m)]
        refs = [identity.parse(m) for m in members]
        canonical = [self.aliases.canonical(m) for m in members]
        return members, canonical, [r.namespace for r in refs], [r.name for r in refs]

    def key(self, node: str) -> tuple[str, str]:
        """The Marquez (namespace, name) of a node id or of any of its names."""
        return node_key(self.aliases.canonical(node))


def node_key(node: str) -> tuple[str, str]:
    ref = identity.parse(node)
    return ref.namespace, ref.name


def versions_sql(db: str, columns: str, page: bool) -> str:
    """One dataset's versions newest first (`n`: its node ids), one per producer version else per run, with
    their count: the runs that wrote it (and DatasetEvents), and its first read when that came before every
    write. Columns: RUN_COLUMNS, then t0, doc, v, design, w."""
    doc = f"arrayConcat(output_facets, input_facets)[arrayFirstIndex(x -> x IN {{n:Array(String)}}, {AT})]"
    ver = f"arrayConcat(output_versions, input_versions)[arrayFirstIndex(x -> x IN {{n:Array(String)}}, {AT})]"
    base = (
        f"{RUN_COLUMNS}, toUnixTimestamp64Milli(started_at) AS t0, {doc} AS doc, {ver} AS v,"
        " JSONExtractBool(facets, 'openlineage', 'designTime') AS design"
    )
    return (
        f"SELECT {columns}, count() OVER () FROM ("
        "  SELECT * FROM ("
        "   SELECT *, min(if(w, t0, {last:Int64})) OVER () AS first_write FROM ("
        f"    SELECT {base}, 1 AS w FROM {db}.runs FINAL WHERE arrayExists(x -> x IN {{n:Array(String)}}, output_ids)"
        f"     OR ({DATASET_EVENT} AND arrayExists(x -> x IN {{n:Array(String)}}, input_ids))"
        "    UNION ALL"
        f"    SELECT * FROM (SELECT {base}, 0 AS w FROM {db}.runs FINAL"
        f"     WHERE arrayExists(x -> x IN {{n:Array(String)}}, input_ids)"
        f" AND NOT ({DATASET_EVENT}) ORDER BY t0, run_id LIMIT 1)"
        "   )"
        "  ) WHERE w OR t0 < first_write ORDER BY t0 DESC, w DESC, run_id DESC"
        "  LIMIT 1 BY if(v = '', if(w, concat('r:', run_id), 'r:'), concat('v:', v))"
        ") ORDER BY t0 DESC, w DESC, run_id DESC" + (" LIMIT {limit:UInt64} OFFSET {offset:UInt64}" if page else "")
    )


def _candidates(db: str) -> str:
    """Every version of every dataset `k` (node ids `ids`, their dataset's index `ks`), as `versions_sql`
    decides them: (k, t0, w, run, v), w = 1 for a write; a first read (w = 0) only when before every write.
    Each run's matching entries are picked out of its arrays before they are unnested (`arrayFilter`, an `IN`
    over the ids' hash set): half the time of unnesting every entry at 1M edges."""
    return (
        "SELECT k, t0, w, run, v FROM ("
        " SELECT k, t0, w, run, v, min(if(w, t0, {last:Int64})) OVER (PARTITION BY k) AS first_write,"
        "  row_number() OVER (PARTITION BY k, w ORDER BY t0, run) AS nth FROM ("
        "  SELECT k, run_id AS run, any(t0) AS t0, max(wrote) AS w, argMin(ver, i) AS v FROM ("
        "   SELECT run_id, t0, e.1 AS i, e.3 AS ver, transform(e.2, {ids:Array(String)}, {ks:Array(Int64)}, -1) AS k,"
        "    e.1 <= n_out OR design AS wrote FROM ("
        "    SELECT run_id, toUnixTimestamp64Milli(started_at) AS t0, length(output_ids) AS n_out,"
        f"     ({DATASET_EVENT}) AS design, arrayJoin(arrayFilter(e -> e.2 IN {{ids:Array(String)}},"
        f"      arrayZip(arrayEnumerate({AT}), {AT}, arrayConcat(output_versions, input_versions)))) AS e"
        f"    FROM {db}.runs FINAL"
        "    WHERE arrayExists(x -> x IN {ids:Array(String)}, output_ids)"
        "     OR arrayExists(x -> x IN {ids:Array(String)}, input_ids))"
        "  ) WHERE k >= 0 GROUP BY k, run_id"
        " )"
        ") WHERE w OR (nth = 1 AND t0 < first_write)"
    )


Version = tuple[int, int, str, str]  # a `_candidates` row but its dataset: (t0, w, run, producer version)


def read_versions(candidates: dict[int, list[Version]], asked: list[tuple[int, int, str]]
                  ) -> list[tuple[str, str] | None]:  # fmt: skip
    """Per asked (dataset index, run start, producer version): (producer version, run, '' for a first read's
    version) of the version it read: the dataset's version of that producer version when there is one, else
    the newest version created before the run started (of those created at one instant, the write, then the
    greatest run id), else the dataset's oldest version; None when the dataset has no version at all."""
    ordered = {k: sorted(rows) for k, rows in candidates.items()}  # by (t0, w, run): a run is one row per k
    starts = {k: [r[0] for r in rows] for k, rows in ordered.items()}
    named = {k: {r[3] for r in rows} for k, rows in ordered.items()}
    out: list[tuple[str, str] | None] = []
    for k, started, want in asked:
        rows = ordered.get(k)
        if not rows:
            out.append(None)
        elif want and want in named[k]:
            out.append((want, ""))
        else:
            before = bisect_left(starts[k], started)  # rows[:before] were created before the run started
            _, w, run, v = rows[before - 1] if before else rows[0]
            out.append((v, run if w else ""))
    return out


def sent_name(stored: tuple[str, str], aliases: Any, symlinks: Any) -> tuple[str, str]:
    """The (namespace, name) a producer sent a dataset under, from what Upriver stored of it: the node's name,
    its `upriverAliases` (every other name it was sent with) and `symlinks` facets (schemas/openlineage.py
    names a dataset by its first TABLE symlink and keeps its own name among the aliases): the alias that is no
    symlink identifier, else the node's name (the producer sent that one)."""
    links = symlinks.get("identifiers") if isinstance(symlinks, dict) else None
    links = links if isinstance(links, list) else []
    linked = {(i.get("namespace"), i.get("name")) for i in links if isinstance(i, dict)}
    for alias in aliases if isinstance(aliases, list) else ():
        pair = (alias.get("namespace"), alias.get("name")) if isinstance(alias, dict) else (None, None)
        if isinstance(pair[0], str) and isinstance(pair[1], str) and pair not in linked:
            return pair[0], pair[1]
    return stored


def artifact_sent_name(a: Artifact) -> tuple[str, str]:
    """`sent_name` of a run's stored input or output."""
    if '"upriverAliases"' not in a.facets:
        return a.namespace, a.name
    try:
        doc = json.loads(a.facets)
    except (ValueError, RecursionError):
        return a.namespace, a.name
    if not isinstance(doc, dict):
        return a.namespace, a.name
    return sent_name((a.namespace, a.name), doc.get("upriverAliases"), doc.get("symlinks"))


def _named(artifacts: tuple[Artifact, ...], names: Names) -> tuple[Artifact, ...]:
    """The artifacts named as sent, each with its group's canonical node id and names (each name once)."""
    out: dict[tuple[str, str], Artifact] = {}
    for a in artifacts:
        if identity.is_id(a.node_id):
            canonical = names.aliases.canonical(a.node_id)
            group = tuple(sorted({node_key(n) for n in names.aliases.names(canonical)}))
            ns, name = artifact_sent_name(a)
            a = replace(a, namespace=ns, name=name, node_id=canonical, names=group)
        out.setdefault((a.namespace, a.name), a)
    return tuple(out.values())


class RunDatasets:
    """Runs' inputs and outputs as Marquez's answers name them, with the versions their inputs read."""

    def __init__(self, client: SqlClient, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    def resolve(self, runs: Sequence[RunRecord], names: Names) -> list[RunRecord]:
        """The runs with every input and output named as the producer sent it, with its group's canonical node
        id and names, and every input of a run (not of a design-time declaration) carrying the version it read
        (`Artifact.read`)."""
        stored = {a.node_id for r in runs for a in (*r.inputs, *r.outputs) if identity.is_id(a.node_id)}
        named = [replace(r, inputs=_named(r.inputs, names), outputs=_named(r.outputs, names)) for r in runs]
        asked = [(i, j) for i, r in enumerate(named) if not r.design for j, a in enumerate(r.inputs)
                 if identity.is_id(a.node_id)]  # fmt: skip
        if not asked:
            return named
        inputs = [(named[i].inputs[j], named[i].started_at) for i, j in asked]
        wanted = sorted({node_key(a.node_id) for a, _ in inputs})
        index = {key: k for k, key in enumerate(wanted)}
        ids = self._members(wanted, names, stored)
        read = self._read(ids, index, [(index[node_key(a.node_id)], start, a.version) for a, start in inputs])
        for (i, j), found in zip(asked, read, strict=True):
            if found is not None:
                changed = list(named[i].inputs)
                changed[j] = replace(changed[j], read=found)
                named[i] = replace(named[i], inputs=tuple(changed))
        return named

    def _members(self, wanted: list[tuple[str, str]], names: Names, seen: set[str]) -> dict[str, tuple[str, str]]:
        """node id -> its Marquez dataset, for every node of the `wanted` datasets (DatasetsReader's grouping:
        the nodes so named, and the alias members answered as them)."""
        sql = (
            f"SELECT DISTINCT node_id FROM {self._db}.nodes"
            " WHERE (namespace, name) IN {k:Array(Tuple(String, String))}"
        )
        found = {str(r[0]) for r in self._rows(sql, k=wanted)} | set(names.members) | seen
        keep = set(wanted)
        return {n: key for n in sorted(found) if identity.is_id(n) and (key := names.key(n)) in keep}

    def _read(self, ids: dict[str, tuple[str, str]], index: dict[tuple[str, str], int],
              asked: list[tuple[int, int, str]]) -> list[tuple[str, str] | None]:  # fmt: skip
        """Per asked (dataset index, run start, producer version): (producer version, run) of the version it
        read, by the rules of the module's docstring; None when the dataset has no version at all."""
        bound = {"ids": list(ids), "ks": [index[key] for key in ids.values()], "dse": DATASET_EVENT_JOB, "last": LAST}
        found: dict[int, list[Version]] = {}
        for k, t0, w, run, v in self._rows(_candidates(self._db), **bound):
            found.setdefault(int(k), []).append((int(t0), int(w), str(run), str(v)))
        return read_versions(found, asked)
