"""Checks Upriver's stored state against an expected state (tests/ol_truth.py or a compatibility
scenario's expected.json), through the read side in process or through the HTTP API. Returns every
mismatch as a line of text, so a failing test lists them all."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from schemas.identity import marquez_id, node_id, parse
from upriver.http.api import ApiError
from upriver.http.routes import handle
from upriver.readside.lineage import LineageReader

Doc = dict[str, Any]


class Read(Protocol):
    def get(self, path: str, **params: str) -> Doc | None:
        """The JSON answer of GET path?params, None for a 404."""


class InProcess:
    def __init__(self, reader: LineageReader) -> None:
        self.reader = reader

    def get(self, path: str, **params: str) -> Doc | None:
        try:
            body = handle(self.reader, path, urllib.parse.urlencode(params))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        assert isinstance(body, dict)
        return body


class Http:
    def __init__(self, url: str, token: str = "") -> None:
        self.url, self.token = url, token

    def send(self, events: list[Doc]) -> None:
        """Each event POSTed as an OpenLineage HTTP transport sends it (one JSON body a request); 201 each."""
        headers = {
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
        }
        for event in events:
            req = urllib.request.Request(
                f"{self.url}/api/v1/lineage", data=json.dumps(event).encode(), headers=headers, method="POST"
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 201, resp.status

    def get(self, path: str, **params: str) -> Doc | None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise


def converged(read: Read, want: Doc, timeout: float = 90) -> list[str]:
    """`check`'s mismatches once the pipeline has caught up (none left), or the last ones at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        bad = check(read, want)
        if not bad or time.monotonic() > deadline:
            return bad
        time.sleep(1)


def _id(d: Doc, field: str | None = None) -> str:
    return node_id("DATASET", d["namespace"], d["name"], field)


def check(read: Read, want: Doc) -> list[str]:
    bad: list[str] = []
    canonical: dict[str, str] = {}
    sent = {(d["namespace"], d["name"]) for d in [*want["datasets"], *want.get("column_only_datasets", [])]}
    symlink_only = {(a["namespace"], a["name"]) for link in want.get("symlinks", []) for a in link["aliases"]} - sent
    for d in [*want["datasets"], *want.get("column_only_datasets", [])]:
        nid = _id(d)
        node = read.get("/api/v1/node", node=nid)
        if node is None:
            bad.append(f"dataset {d} not found by its id {nid}")
            continue
        canonical[nid] = node["id"]
        names = [(node["namespace"], node["name"]), *((a["namespace"], a["name"]) for a in node.get("aliases", []))]
        if (d["namespace"], d["name"]) not in names:
            bad.append(f"dataset {d} answered as {names}")
        ref = parse(node["id"])
        if (ref.namespace, ref.name) != (node["namespace"], node["name"]):
            bad.append(f"node {node['id']} echoes {node['namespace']!r} {node['name']!r}")
        marquez = read.get("/api/v1/lineage", nodeId=f"dataset:{d['namespace']}:{d['name']}", depth="1")
        if marquez is None:
            bad.append(f"Marquez nodeId dataset:{d['namespace']}:{d['name']} not found")
            continue
        # Marquez draws a dataset once, under a name a producer sent it as (never a symlink identifier only)
        drawn = [(v["id"], (v["data"]["namespace"], v["data"]["name"])) for v in marquez["graph"]
                 if v["type"] == "DATASET" and (v["data"]["namespace"], v["data"]["name"]) in names]  # fmt: skip
        ok = len(drawn) == 1 and drawn[0][1] not in symlink_only
        if not ok or drawn[0][0] != "dataset:{}:{}".format(*drawn[0][1]):
            bad.append(f"Marquez graph of {d} draws it as {drawn}, not once under a name it was sent as")
    for link in want.get("symlinks", []):
        base = canonical.get(_id(link))
        for alias in link["aliases"]:
            node = read.get("/api/v1/node", node=_id(alias))
            if node is None or node["id"] != base:
                bad.append(f"symlink {alias} of {link['namespace']} {link['name']} resolves to "
                           f"{node and node['id']}, not {base}")  # fmt: skip
    for job in want["jobs"]:
        jid = node_id("JOB", job["namespace"], job["name"])
        node = read.get("/api/v1/node", node=jid)
        if node is None or (node["namespace"], node["name"]) != (job["namespace"], job["name"]):
            bad.append(f"job {job} not found as {jid} (got {node and (node['namespace'], node['name'])})")
        touched = read.get("/api/v1/lineage", nodeId=f"job:{job['namespace']}:{job['name']}", depth="1")
        if touched is None or marquez_id(parse(jid)) not in {v["id"] for v in touched["graph"]}:
            bad.append(f"Marquez nodeId job:{job['namespace']}:{job['name']} has no JOB vertex")
    ends: dict[str, int | None] = {}
    for run in want["runs"]:
        got = read.get("/api/v1/run", id=run["run_id"])
        if got is None:
            bad.append(f"run {run['run_id']} not found")
            continue
        ends[run["run_id"]] = got["ended_at"] or got["started_at"]
        if got["status"] != run["final_state"]:
            bad.append(f"run {run['run_id']} is {got['status']}, the spec says {run['final_state']}")
        if run.get("error_message") is not None and got["error"] != run["error_message"]:
            bad.append(f"run {run['run_id']} error {got['error']!r}, sent {run['error_message']!r}")
        if (got["job"]["namespace"], got["job"]["name"]) != (run["job"]["namespace"], run["job"]["name"]):
            bad.append(f"run {run['run_id']} job {got['job']}, sent {run['job']}")
        if run.get("parent_run_id") and got["parent_run_id"] != run["parent_run_id"]:
            bad.append(f"run {run['run_id']} parent {got['parent_run_id']}, sent {run['parent_run_id']}")
        job_node = read.get("/api/v1/node", node=node_id("JOB", run["job"]["namespace"], run["job"]["name"]))
        for side in ("inputs", "outputs"):
            ids = {canonical.get(_id(d), _id(d)) for d in run[side]}
            if job_node is not None and not ids <= set(job_node[side]):
                bad.append(f"job {run['job']['name']} {side} {sorted(set(job_node[side]))} lack {sorted(ids)}")
    states = {r["run_id"]: r["final_state"] for r in want["runs"]}
    for edge in want["edges"]:
        if states.get(edge["run_id"]) in ("FAIL", "ABORT"):
            continue  # stored for provenance, never valid (docs/lineage-model.md)
        src, dst = canonical.get(_id(edge["src"]), _id(edge["src"])), canonical.get(_id(edge["dst"]), _id(edge["dst"]))
        if src == dst:
            continue  # a table read by path and written by name: one node
        as_of = str(ends.get(edge["run_id"]) or "")
        down = read.get("/api/v1/downstream", node=src, depth="1", as_of=as_of)
        up = read.get("/api/v1/upstream", node=dst, depth="1", as_of=as_of)
        if down is None or dst not in {n["id"] for n in down["nodes"]}:
            bad.append(f"edge {src} -> {dst} (run {edge['run_id']}) not downstream of {src}")
        if up is None or src not in {n["id"] for n in up["nodes"]}:
            bad.append(f"edge {src} -> {dst} (run {edge['run_id']}) not upstream of {dst}")
    columns: dict[str, set[tuple[str, str, str, str | None]]] = {}

    def column_edges(dataset: Doc) -> set[tuple[str, str, str, str | None]]:
        nid = canonical.get(_id(dataset), _id(dataset))
        if nid not in columns:
            got = read.get("/api/v1/column-lineage", node=nid) or {"edges": []}
            columns[nid] = {(e["src"], e["dst"], e["type"], e["subtype"]) for e in got["edges"]}
        return columns[nid]

    def src_col(e: Doc) -> str:
        return f"{canonical.get(_id(e['src']), _id(e['src']))}#{e['src']['field']}"

    for e in want["column_edges"]:
        dst = f"{canonical.get(_id(e['dst']), _id(e['dst']))}#{e['dst']['field']}"
        _match(bad, column_edges(e["dst"]), column_edges(e["src"]), src_col(e), dst, e)
    for e in want.get("dataset_column_edges", []):
        dst = f"{canonical.get(_id(e['dst']), _id(e['dst']))}#"
        _match(bad, column_edges(e["dst"]), column_edges(e["src"]), src_col(e), dst, e)
    return bad


def _match(bad: list[str], at_dst: set[Any], at_src: set[Any], src: str, dst: str, e: Doc) -> None:
    """The column edge is found from both ends, with its type and subtype when the facet gives them
    (a missing type is DIRECT by the spec's default; Upriver joins a type's subtypes with commas)."""
    for where, edges in (("downstream end", at_dst), ("upstream end", at_src)):
        hits = [x for x in edges if x[0] == src and x[1] == dst]
        if not hits:
            bad.append(f"column edge {src} -> {dst} not found from its {where}")
            continue
        ttype = e["type"] or "DIRECT"
        if not any(h[2] == ttype and (e["subtype"] is None or e["subtype"] in (h[3] or "").split(",")) for h in hits):
            bad.append(f"column edge {src} -> {dst}: {hits} lack type {ttype}/{e['subtype']}")
