"""Marquez-shaped answers over the read side: `GET /api/v1/lineage?nodeId=` and the column-lineage graph.

Clients written for Marquez (its web UI, the OpenLineage integrations' checks) read these shapes; the
handlers of upriver/http/routes.py call them with the parameters already read and checked.
"""

from __future__ import annotations

from typing import Any

from schemas import identity
from upriver.http.api import ApiError
from upriver.readside.lineage import LineageGraph, LineageReader, NodeNotFound, kind_of


def lineage(reader: LineageReader, node: str, depth: int, as_of: int | None) -> dict[str, Any]:
    """The graph around `node` (resolved) shaped like Marquez's answer: dataset and job vertices with
    their in/out edges. The datasets are the node's valid upstream and downstream; every job whose runs
    read or wrote one of them is a JOB vertex between its inputs and outputs (also jobs that only read,
    such as tests, or only write). Namespaces and names are echoed exactly as sent."""
    try:
        up = reader.upstream(node, depth=depth, as_of=as_of)
        down = reader.downstream(node, depth=depth, as_of=as_of)
    except NodeNotFound:
        if not reader.node_exists(node):  # known, but in no edge (e.g. only ever read): the node alone
            raise
        up = LineageGraph(root=node, direction="upstream", depth=depth, nodes={node: 0})
        down = LineageGraph(root=node, direction="downstream", depth=depth, nodes={node: 0})
    datasets = {n for n in (node, *up.nodes, *down.nodes) if "#" not in n and kind_of(n) != "job"}
    jobs = reader.jobs_touching(sorted(datasets))
    graph: dict[str, dict[str, Any]] = {}

    def vertex(ref: identity.NodeRef, data: dict[str, Any]) -> str:
        vid = identity.marquez_id(ref)
        vtype = "JOB" if ref.kind == identity.JOB else "DATASET"
        base = {"id": {"namespace": ref.namespace, "name": ref.name}, "namespace": ref.namespace, "name": ref.name}
        graph.setdefault(vid, {"id": vid, "type": vtype, "data": {**base, **data}, "inEdges": [], "outEdges": []})
        return vid

    def dataset(nid: str) -> str:
        ref = identity.parse(nid)
        return vertex(ref, {"kind": ref.kind, "upriverId": nid})

    for n in sorted(datasets):
        dataset(n)
    if kind_of(node) == "job" and node not in jobs:
        jobs[node] = {**reader.job(node), "inputs": set(), "outputs": set(), "status": None}
    edges: set[tuple[str, str]] = set()
    for job, info in sorted(jobs.items()):
        jid = vertex(identity.parse(job), {"upriverId": job, "latestRunState": info["status"]})
        edges.update((dataset(i), jid) for i in info["inputs"])
        edges.update((jid, dataset(o)) for o in info["outputs"])
    for origin, destination in sorted(edges):
        edge = {"origin": origin, "destination": destination}
        graph[origin]["outEdges"].append(edge)
        graph[destination]["inEdges"].append(edge)
    return {"graph": list(graph.values())}


def column_lineage(reader: LineageReader, node_id: str, depth: int, both: bool) -> dict[str, Any]:
    """The column-lineage graph of `node_id` (datasetField:ns:name:field or dataset:ns:name) shaped like
    Marquez's answer: DATASET_FIELD vertices with their inputFields (type, subtypes as the description),
    edges as Marquez writes them (origin: the vertex itself). The walk goes upstream from the field (or
    every field of the dataset) for `depth` hops, and downstream too with `both`."""
    try:
        asked = identity.parse_marquez(node_id)
    except identity.IdentityError as exc:
        raise ApiError(400, str(exc)) from None
    node = reader.resolve(f"dataset:{asked.namespace}:{asked.name}")
    by_dataset: dict[str, list[dict[str, Any]]] = {}

    def edges_of(column_or_table: str) -> list[dict[str, Any]]:
        table = identity.node_of(column_or_table)
        if table not in by_dataset:  # field edges only: Marquez has no dataset-level (`#`) entries
            by_dataset[table] = [e for e in reader.column_lineage(table) if identity.field_of(e["dst"])]
        return by_dataset[table]

    if asked.field is not None:
        start = [identity.column_id(node, asked.field)]
    else:
        ends = {e[k] for e in edges_of(node) for k in ("src", "dst")}
        start = sorted(c for c in ends if identity.node_of(c) == node)
    seen, found = set(start), set()
    for here, there in (("dst", "src"), ("src", "dst")) if both else (("dst", "src"),):
        frontier = list(start)
        for _ in range(depth):
            step = []
            for col in frontier:
                for e in edges_of(col):
                    if e[here] == col:
                        found.add((e["src"], e["dst"], e["type"], e["subtype"]))
                        if e[there] not in seen:
                            seen.add(e[there])
                            step.append(e[there])
            frontier = step
    return {"graph": [_field_vertex(col, found) for col in sorted(seen)]}


def _field_vertex(col: str, edges: set[tuple[str, str, str, str | None]]) -> dict[str, Any]:
    ref = identity.parse(col)
    vid = identity.marquez_id(ref)
    ins, outs = sorted(e for e in edges if e[1] == col), sorted(e for e in edges if e[0] == col)
    inputs = []
    for src, _, ttype, subtype in ins:
        s = identity.parse(src)
        inputs.append({"namespace": s.namespace, "dataset": s.name, "field": s.field,
                       "transformationDescription": subtype, "transformationType": ttype})  # fmt: skip
    first = inputs[0] if inputs else {}
    data = {"namespace": ref.namespace, "dataset": ref.name, "datasetVersion": None, "field": ref.field,
            "fieldType": None, "transformationDescription": first.get("transformationDescription"),
            "transformationType": first.get("transformationType"), "inputFields": inputs}  # fmt: skip
    return {
        "id": vid,
        "type": "DATASET_FIELD",
        "data": data,
        "inEdges": [{"origin": vid, "destination": identity.marquez_id(identity.parse(e[0]))} for e in ins],
        "outEdges": [{"origin": vid, "destination": identity.marquez_id(identity.parse(e[1]))} for e in outs],
    }
