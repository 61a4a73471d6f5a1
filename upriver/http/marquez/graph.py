"""Marquez-shaped graphs over the read side: `GET /api/v1/lineage?nodeId=&depth=` (the column-lineage graph is
upriver/http/marquez/columns.py's).

`lineage` answers what Marquez's LineageService.lineage answers (api/src/main/java/marquez/service/
LineageService.java): the walk through jobs of upriver/readside/jobgraph.py, then JOB and DATASET vertices with
Marquez's `data` (service/models/JobData.java, DatasetData.java: every key, filled with what Upriver knows), their
inEdges/outEdges, nodes and edges in Marquez's order (NodeId strings compared as Java compares them). Clients
written for Marquez (its web UI, marquez-python) read these shapes. Namespaces and names are echoed as sent.
"""

from __future__ import annotations

from typing import Any

from schemas import identity
from upriver.http.api import MarquezError
from upriver.http.marquez import shapes
from upriver.readside.aliases import Aliases
from upriver.readside.dataset_versions import node_key
from upriver.readside.jobgraph import DatasetRow, JobIO, walk
from upriver.readside.jobs import JobRecord, RunRecord
from upriver.readside.lineage import LineageReader

Vertex = dict[str, Any]


def lineage(reader: LineageReader, node_id: str, depth: int, as_of: int | None) -> dict[str, Any]:
    """Marquez's lineage graph of `node_id` (`dataset:<ns>:<name>`, `job:<ns>:<name>`, or an Upriver node id):
    the jobs reached in `depth` levels from the node's job and their current inputs and outputs; a dataset no
    job's version touched, or that the jobs reached no longer touch, alone (Marquez's "orphan graph")."""
    aliases = reader.aliases()
    jobs = reader.jobgraph.jobs(aliases, as_of)
    kind, node = _resolve(reader, node_id, jobs, aliases)
    start = node if kind == "job" else reader.jobgraph.start_job(list(aliases.names(node)), as_of)
    if start is None or start not in jobs:
        return _answer(reader, [], {node}, aliases)
    reached = [jobs[j] for j in walk(jobs, start, depth)]
    datasets = {d for job in reached for d in job.inputs | job.outputs}
    if kind == "dataset" and node not in datasets:  # "no longer share lineage with dataset": the dataset alone
        return _answer(reader, [], {node}, aliases)
    return _answer(reader, reached, datasets, aliases)


def _resolve(reader: LineageReader, text: str, jobs: dict[str, JobIO], aliases: Aliases) -> tuple[str, str]:
    """("job", job id) or ("dataset", canonical node id) of a Marquez nodeId, read as Marquez's NodeId reads it
    first, then at each other ':' (identity.marquez_candidates); an Upriver node id is taken too. 404 with
    Marquez's message otherwise (api/exceptions/*NotFoundException, service/NodeIdNotFoundException)."""
    prefix = text.partition(":")[0]
    try:
        candidates = identity.marquez_candidates(text) if prefix in identity.MARQUEZ_TYPES else []
    except identity.IdentityError:
        candidates = []  # not in Marquez's form: perhaps an Upriver id (job:ns/name, dataset:ns/name)
    asked = candidates[0] if candidates else None
    if prefix == "job":
        for cand in candidates:
            if identity.job_id(cand.namespace, cand.name) in jobs:
                return "job", identity.job_id(cand.namespace, cand.name)
        if text in jobs:
            return "job", text
        raise MarquezError(404, f"Job '{asked.name if asked else text}' not found.")
    if prefix == "run":
        if asked is not None and reader.catalog_jobs.run(asked.name) is None:
            raise MarquezError(404, f"Run '{asked.name}' not found.")
        raise MarquezError(404, f"Node '{text}' must be of type dataset or job!")
    if prefix not in ("dataset", "datasetField"):  # an Upriver node id or name, as the read side resolves it
        node = reader.resolve(text)
        return ("job" if identity.kind_of(node) == "job" else "dataset"), node
    found = _dataset(reader, [(c.namespace, c.name) for c in candidates], aliases)
    if prefix == "datasetField":
        if found is None and asked is not None:
            raise MarquezError(404, f"Field '{asked.field}' not found for dataset '{asked.name}'.")
        raise MarquezError(404, f"Node '{text}' must be of type dataset or job!")
    if found is None and identity.is_id(text) and reader.node_exists(text, aliases):
        found = aliases.canonical(text)
    if found is None:
        raise MarquezError(404, f"Dataset '{asked.name if asked else text}' not found.")
    return "dataset", found


def _dataset(reader: LineageReader, pairs: list[tuple[str, str]], aliases: Aliases) -> str | None:
    """The canonical node of the first (namespace, name) known: a `dataset:` node, else a node of another
    kind (a model, a feature ...: every Upriver artifact is a Marquez dataset)."""
    for ns, name in pairs:
        nid = identity.node_id("DATASET", ns, name)
        if reader.node_exists(nid, aliases):
            return aliases.canonical(nid)
    found = {(ns, name): nid for nid, ns, name in reader.jobgraph.named(pairs)}
    return next((aliases.canonical(found[p]) for p in pairs if p in found), None)


def _answer(reader: LineageReader, jobs: list[JobIO], datasets: set[str], aliases: Aliases) -> dict[str, Any]:
    """Marquez's Lineage: the vertices sorted by id, each with its in and out edges sorted (origin, destination)."""
    rows = reader.jobgraph.datasets(aliases.expand(sorted(datasets)))
    runs = reader.jobgraph.runs(sorted({r for j in jobs for r in (j.latest_run, j.declared_run) if r}))
    # their datasets named, and inputs versioned, as the datasets routes answer them (dataset_versions.py)
    runs = dict(zip(runs, reader.catalog_datasets.resolve_runs(list(runs.values())), strict=True))
    # a dataset known under several names is drawn under the one it was first sent as (Marquez's dataset name)
    named = reader.catalog_datasets.sent_names(datasets, aliases)
    keys = {node: named.get(node) or node_key(node) for node in datasets}
    graph: dict[str, Vertex] = {}
    ids: dict[str, str] = {}
    for node in sorted(datasets):
        ids[node] = f"dataset:{keys[node][0]}:{keys[node][1]}"
        graph.setdefault(ids[node], _vertex(ids[node], "DATASET", _dataset_data(keys[node], node, rows, aliases)))
    for job in jobs:
        jid = f"job:{job.namespace}:{job.name}"
        graph.setdefault(jid, _vertex(jid, "JOB", _job_data(job, runs, keys)))
        for edge in [(ids[i], jid) for i in job.inputs] + [(jid, ids[o]) for o in job.outputs]:
            graph[edge[0]]["outEdges"].add(edge)
            graph[edge[1]]["inEdges"].add(edge)
    out = []
    for vid in sorted(graph, key=_java):
        vertex = graph[vid]
        for side in ("inEdges", "outEdges"):
            ordered = sorted(vertex[side], key=lambda e: (_java(e[0]), _java(e[1])))
            vertex[side] = [{"origin": o, "destination": d} for o, d in ordered]
        out.append(vertex)
    return {"graph": out}


def _vertex(vid: str, vtype: str, data: dict[str, Any]) -> Vertex:
    return {"id": vid, "type": vtype, "data": data, "inEdges": set(), "outEdges": set()}


def _java(text: str) -> bytes:
    """A sort key that orders strings as Java's String.compareTo does (UTF-16 code units)."""
    return text.encode("utf-16-be", "surrogatepass")


def _ids(nodes: frozenset[str], keys: dict[str, tuple[str, str]]) -> list[dict[str, str]]:
    return [{"namespace": ns, "name": name} for ns, name in sorted({keys.get(n) or node_key(n) for n in nodes})]


def _job_data(job: JobIO, runs: dict[str, RunRecord], keys: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """JobData's keys (its uuid, inputUuids, outputUuids are @JsonIgnore): the jobs routes' Job shape
    (upriver/http/marquez/shapes.py, the same names, parent, times and latest run) with Marquez's current
    inputs and outputs."""
    latest = runs.get(job.latest_run or "")
    record = JobRecord(job.namespace, job.name, job.created_at, job.updated_at,
                       runs=(latest,) if latest else (), declared=runs.get(job.declared_run or ""))  # fmt: skip
    doc = shapes.job_doc(record)
    return {
        **{k: doc[k] for k in ("id", "type", "name", "simpleName", "parentJobName", "parentJobUuid")},
        "currentRunUuid": job.latest_run, "createdAt": doc["createdAt"],
        "updatedAt": doc["updatedAt"], "namespace": job.namespace, "inputs": _ids(job.inputs, keys),
        "outputs": _ids(job.outputs, keys), "location": doc["location"], "description": doc["description"],
        "latestRun": doc["latestRun"],
    }  # fmt: skip


def _dataset_data(key: tuple[str, str], node: str, rows: dict[str, DatasetRow], aliases: Aliases) -> dict[str, Any]:
    """DatasetData's keys (LineageDao.getDatasetData: tags always empty there). Marquez stores every OpenLineage
    dataset as a DB_TABLE whose physical name is its name; the source is `default` unless a dataSource facet
    names one (not read here)."""
    found = [rows[n] for n in aliases.names(node) if n in rows]
    first = min((r.first_seen for r in found if r.first_seen), default=0)
    last = max((r.last_seen or 0 for r in found), default=0) or first
    written = max((r.last_written or 0 for r in found), default=0) or None
    fields = next((r.fields for r in found if r.fields), ())
    return {
        "id": {"namespace": key[0], "name": key[1]}, "type": "DB_TABLE", "name": key[1],
        "physicalName": key[1], "createdAt": shapes.iso(first), "updatedAt": shapes.iso(last),
        "namespace": key[0], "sourceName": "default",
        "fields": [{"name": f, "type": None, "tags": [], "description": None} for f in fields], "tags": [],
        "lastModifiedAt": shapes.iso(written), "description": None, "lastLifecycleState": None,
    }  # fmt: skip
