"""Marquez's column-lineage graph: `GET /api/v1/column-lineage?nodeId=&depth=&withDownstream=` as Marquez's
ColumnLineageResource and ColumnLineageService answer it (api/src/main/java/marquez/api/ColumnLineageResource.java,
service/ColumnLineageService.java, db/DatasetFieldDao.java, db/ColumnLineageDao.java). The route is
upriver/http/routes.py's `column_lineage` (its `node=` mode is Upriver's own answer); the walk is
upriver/readside/column_graph.py's and the vertices upriver/http/marquez/column_shapes.py's.

The start fields of a nodeId, as DatasetFieldDao finds them:
- `datasetField:ns:name:field`: that field (`findUuid`); `dataset:ns:name`: every field of the dataset
  (`findDatasetFieldsUuids`); `job:ns:name`: every field of every dataset the job's newest run wrote
  (`findFieldsUuidsByJob`). A dataset's fields are its schema's, and here also those its column edges name
  (Upriver keeps column lineage Marquez drops: sources named only inside a columnLineage facet);
- `dataset:ns:name#version` / `datasetField:…:field#version`: the fields of that dataset version, the lineage as
  it was when the version was created (`createdAtUntil`: its run's start), and every vertex id carries the
  version of its field's dataset (`toNodeId(…, includeVersion)`);
- `job:ns:name#version`: `findFieldsUuidsByJobVersion` joins every dataset's fields, not the job's, so Marquez
  answers every column edge as of that job version's run; so does this.
No start field is 404 "Could not find node" (NodeIdNotFoundException), whatever the node. A version with
`withDownstream=true` is refused first, 400 "Node version cannot be specified when withDownstream is true" (Marquez
sends that as the status line's reason with no entity; here in Marquez's error shape). A version is a uuid after the
last '#'; a '#' followed by anything else is part of the name (names may hold '#'; Marquez fails on those). A
nodeId that is no Marquez id is read as an Upriver node id (`dataset:ns/name[#field]`, `job:ns/name`); a `run:` id
is 400 (Marquez: UnsupportedOperationException, a 500). Namespaces and names are echoed as sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from schemas import identity
from upriver.http.api import MarquezError
from upriver.http.marquez import column_shapes
from upriver.http.marquez.shapes import dataset_version_id, job_version_id
from upriver.readside.aliases import Aliases
from upriver.readside.column_graph import ColumnIndex, walk
from upriver.readside.lineage import LineageReader, NodeNotFound
from upriver.readside.model import FAR_FUTURE_MS

VERSION_REFUSED = "Node version cannot be specified when withDownstream is true"
NOT_FOUND = "Could not find node"
RUNS_PAGE = 500  # runs read per page while looking for a job version's run
_MAX_READINGS = 64  # ways to split a nodeId at ':' tried before giving up


@dataclass(frozen=True)
class Start:
    """Where a walk starts: canonical column ids, the newest run start that counts (epoch ms), whether vertex ids
    carry versions, and whether every field starts (a job version)."""

    columns: frozenset[str]
    until: int = FAR_FUTURE_MS
    versioned: bool = False
    everything: bool = False


def column_lineage(reader: LineageReader, node_id: str, depth: int, downstream: bool, as_of: int | None = None
                   ) -> dict[str, Any]:  # fmt: skip
    """Marquez's Lineage of DATASET_FIELD vertices around `node_id`."""
    body, version = split_version(node_id)
    prefix = body.partition(":")[0]
    if version is not None and downstream and prefix in identity.MARQUEZ_TYPES:
        raise MarquezError(400, VERSION_REFUSED)
    aliases = reader.aliases()
    index = ColumnIndex(reader.column_graph, aliases)
    start = _start(reader, index, body, version)
    if start is None or not (start.columns or start.everything):
        raise MarquezError(404, NOT_FOUND)
    if as_of is not None:
        start = Start(start.columns, min(start.until, as_of), start.versioned, start.everything)
    if start.until != index.until:  # a bound read afresh: rows read before it were not bounded
        index = ColumnIndex(reader.column_graph, aliases, start.until)
    if start.everything:
        index.load_all()
        rows = [index.pairs[p] for p in sorted(index.pairs)]
    else:
        rows = walk(index, start.columns, depth, downstream)
    return {"graph": column_shapes.vertices(reader, rows, start.versioned, aliases)}


def split_version(text: str) -> tuple[str, str | None]:
    """(the id without its version, the version as a canonical uuid) when the id ends in `#<uuid>`."""
    head, hash_, tail = text.rpartition("#")
    if not hash_:
        return text, None
    try:
        return head, str(uuid.UUID(tail))
    except ValueError:
        return text, None


def readings(body: str) -> list[identity.MarquezId]:
    """Every way to read a version-less Marquez id: Marquez's own split first (NodeId.parts), then each other split
    at ':' (namespaces like `postgres://db:5432` or `file:/tmp` defeat Marquez's heuristic). '#' stays in names."""
    prefix, _, rest = body.partition(":")
    out: list[identity.MarquezId] = []
    try:
        first = identity.parse_marquez(body)
        if first.version is not None:  # parse_marquez splits a '#' off the last part: here it is a name's
            last = f"{first.field if prefix == 'datasetField' else first.name}#{first.version}"
            first = identity.MarquezId(prefix, first.namespace, first.name if prefix == "datasetField" else last,
                                       last if prefix == "datasetField" else None)  # fmt: skip
        out.append(first)
    except identity.IdentityError:
        pass
    colons = [i for i, c in enumerate(rest) if c == ":"]
    splits: list[tuple[str, str, str | None]]
    if prefix in ("dataset", "job"):
        splits = [(rest[:i], rest[i + 1 :], None) for i in colons]
    elif prefix == "datasetField":
        splits = [(rest[:i], rest[i + 1 : j], rest[j + 1 :]) for j in reversed(colons) for i in colons if i < j]
    else:
        splits = []
    for ns, name, field in splits[:_MAX_READINGS]:
        cand = identity.MarquezId(prefix, ns, name, field)
        if ns and name and (field is None or field) and cand not in out:
            out.append(cand)
    return out


def _start(reader: LineageReader, index: ColumnIndex, body: str, version: str | None) -> Start | None:
    """The start of `body` (a nodeId without its version), or None when no node of it is known."""
    prefix = body.partition(":")[0]
    if prefix == "run":
        raise MarquezError(400, f"Unsupported NodeId: {body if version is None else f'{body}#{version}'}")
    if prefix in ("dataset", "datasetField", "job"):
        for cand in readings(body):
            found = _marquez_start(reader, index, cand, version)
            if found is not None:
                return found
    if not identity.is_id(body):
        return None
    try:  # an Upriver id: dataset:ns/name, dataset:ns/name#field, job:ns/name
        node = reader.resolve(body)
    except NodeNotFound:
        return None
    ref = identity.parse(node)
    kind = "job" if ref.kind == identity.JOB else "datasetField" if ref.field is not None else "dataset"
    return _marquez_start(reader, index, identity.MarquezId(kind, ref.namespace, ref.name, ref.field), version)


def _marquez_start(reader: LineageReader, index: ColumnIndex, cand: identity.MarquezId, version: str | None
                   ) -> Start | None:  # fmt: skip
    if cand.type == "job":
        return _job_start(reader, index, cand, version)
    node = _dataset(reader, cand, index.aliases)
    if node is None:
        return None
    if version is not None:
        return _version_start(reader, node, cand.field, version)
    index.load([node])
    fields = set(_schema_fields(reader, node, index.aliases)) | index.fields_of(node)
    if cand.field is not None:
        fields &= {cand.field}
    return Start(frozenset(identity.column_id(node, f) for f in fields))


def _dataset(reader: LineageReader, cand: identity.MarquezId, aliases: Aliases) -> str | None:
    """The canonical node of a Marquez dataset (a `dataset:` node, else a node of another kind so named: every
    Upriver artifact is a Marquez dataset), or None."""
    nid = identity.node_id("DATASET", cand.namespace, cand.name)
    if reader.node_exists(nid, aliases):
        return aliases.canonical(nid)
    found = reader.jobgraph.named([(cand.namespace, cand.name)])
    return aliases.canonical(found[0][0]) if found else None


def _schema_fields(reader: LineageReader, node: str, aliases: Aliases) -> list[str]:
    rows = reader.jobgraph.datasets(list(aliases.names(node)))
    return [f for row in rows.values() for f in row.fields]


def _version_start(reader: LineageReader, node: str, field: str | None, version: str) -> Start | None:
    """The fields of the dataset version `version` (`findDatasetVersionFieldsUuids`), as of its creation."""
    ref = identity.parse(node)
    ds = reader.catalog_datasets.find(ref.namespace, ref.name)
    if ds is None:
        return None
    keys = reader.catalog_datasets.version_keys(ds)
    at = next((i for i, (run, v) in enumerate(keys) if dataset_version_id(ds.namespace, ds.name, v, run) == version),
              None)  # fmt: skip
    found = None if at is None else reader.catalog_datasets.version(ds, at)
    if found is None:
        return None
    fields = set(column_shapes.schema_types(found.facets)) | set(column_shapes.lineage_of(found.facets))
    if field is not None:
        fields &= {field}
    return Start(frozenset(identity.column_id(node, f) for f in fields), found.created_at, versioned=True)


def _job_start(reader: LineageReader, index: ColumnIndex, cand: identity.MarquezId, version: str | None
               ) -> Start | None:  # fmt: skip
    """A job's start: every field of the datasets its newest run (by start, among its latest runs) wrote
    (`findFieldsUuidsByJob`); with a version, every field as of that version's newest run
    (`findFieldsUuidsByJobVersion`)."""
    if version is not None:
        return _job_version_start(reader, cand, version)
    job = reader.catalog_jobs.job(cand.namespace, cand.name)
    if job is None:
        return None
    if not job.runs:
        return Start(frozenset())
    newest = max(job.runs, key=lambda r: (r.started_at, r.run_id))
    nodes = sorted({index.aliases.canonical(a.node_id) for a in newest.outputs if identity.is_id(a.node_id)})
    index.load(nodes)
    columns: set[str] = set()
    for node in nodes:
        fields = set(_schema_fields(reader, node, index.aliases)) | index.fields_of(node)
        columns.update(identity.column_id(node, f) for f in fields)
    return Start(frozenset(columns))


def _job_version_start(reader: LineageReader, cand: identity.MarquezId, version: str) -> Start | None:
    """Every field, as of the newest run of the job version `version` (its runs named as the runs routes name
    them, so the id is the one their `jobVersion` shows)."""
    offset, total = 0, 1
    while offset < total:
        page = reader.catalog_jobs.runs(cand.namespace, cand.name, RUNS_PAGE, offset)
        if page is None:
            return None
        runs, total = page
        if not runs:
            break
        for run in reader.catalog_datasets.resolve_runs(runs):
            if job_version_id(run.namespace, run.job_name, run.inputs, run.outputs) == version:
                return Start(frozenset(), run.started_at, versioned=True, everything=True)
        offset += len(runs)
    return Start(frozenset())
