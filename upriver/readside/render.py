"""Rendering the read side's answers: the CLI's text tree, the API's JSON-ready dicts, impact CSV. Pure.

Lookup rows arrive as upriver/readside/queries.py reads them (column order documented there) with the
request's alias groups, so every id shown is canonical.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from schemas import identity

if TYPE_CHECKING:  # the values import this module for their to_json methods
    from upriver.readside.aliases import Aliases
    from upriver.readside.model import Impact, LineageGraph, Provenance


def _children(graph: LineageGraph) -> dict[str, dict[str, list[str]]]:
    """node -> child -> edge types, where a child is one step further in the walk's direction."""
    out: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for src, dst, edge_type in graph.edges:
        parent, child = (dst, src) if graph.direction == "upstream" else (src, dst)
        out[parent].setdefault(child, []).append(edge_type)
    return out


def render_tree(graph: LineageGraph) -> str:
    """An indented tree, root first, edge types in brackets; each node is expanded once and later
    mentions are marked "(seen above)" (diamonds and cycles stay finite)."""
    children = _children(graph)
    lines: list[str] = []
    expanded: set[str] = set()
    # Explicit stack of (node, edge types, line head, indent for its children): a deep graph must not
    # hit Python's recursion limit. Children are pushed in reverse so they pop in sorted order.
    stack: list[tuple[str, list[str], str, str]] = [(graph.root, [], "", "")]
    while stack:
        node, types, head, indent = stack.pop()
        label = f"{node} [{', '.join(types)}]" if types else node
        if node in expanded:
            lines.append(f"{head}{label} (seen above)")
            continue
        expanded.add(node)
        lines.append(f"{head}{label}")
        kids = sorted(children.get(node, {}).items())
        for i in reversed(range(len(kids))):
            child, child_types = kids[i]
            last = i == len(kids) - 1
            stack.append(
                (
                    child,
                    sorted(set(child_types)),
                    indent + ("└── " if last else "├── "),
                    indent + ("    " if last else "│   "),
                )
            )
    if graph.truncated:
        lines.append(f"... truncated at depth {graph.depth}: ask for a larger depth to see more")
    return "\n".join(lines)


def to_json(graph: LineageGraph) -> dict[str, Any]:
    """A JSON-ready dict: root, direction, depth, truncated, nodes (id, level) and edges."""
    return {
        "root": graph.root,
        "direction": graph.direction,
        "depth": graph.depth,
        "truncated": graph.truncated,
        "as_of": graph.as_of,
        "nodes": [{"id": n, "level": lvl} for n, lvl in sorted(graph.nodes.items(), key=lambda x: (x[1], x[0]))],
        "edges": [{"src": s, "dst": d, "edge_type": t} for s, d, t in graph.edges],
    }


def impact_json(impact: Impact) -> dict[str, Any]:
    groups = impact.by_kind
    return {
        "root": impact.root,
        "as_of": impact.as_of,
        "depth": impact.depth,
        "partial": impact.partial,
        "max_nodes": impact.max_nodes,
        "total": sum(len(v) for v in groups.values()),
        "counts": {k: len(v) for k, v in groups.items()},
        "by_kind": groups,
        "models": groups.get("model", []),
        "deployments": groups.get("deployment", []) + groups.get("endpoint", []),
        "dashboards": groups.get("dashboard", []) + groups.get("report", []),
    }


def impact_csv(impact: Impact) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["node_id", "kind", "level"])
    for node, level in sorted(impact.levels.items(), key=lambda x: (x[1], x[0])):
        if node != impact.root:
            w.writerow([node, identity.kind_of(node), level])
    return buf.getvalue()


def provenance_json(p: Provenance) -> dict[str, Any]:
    return {
        "node": p.node,
        "version": p.version,
        "run_id": p.run_id,
        "job": p.job,
        "job_kind": p.job_kind,
        "status": p.status,
        "started_at": p.started_at,
        "ended_at": p.ended_at,
        "parent_run_id": p.parent_run_id,
        "inputs": [{"id": n, "version": v} for n, v in p.inputs],
        "outputs": [{"id": n, "version": v} for n, v in p.outputs],
    }


def ms(value: Any) -> int | None:
    """A DateTime64 as epoch ms; None for ClickHouse's zero time (never)."""
    millis = int(value.timestamp() * 1000) if isinstance(value, datetime) else None
    return millis if millis else None


def refs(aliases: Aliases, ids: Iterable[Any], versions: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"id": aliases.canonical(str(i)), "version": v or None} for i, v in zip(ids, versions, strict=True)]


def facets_json(texts: Iterable[str]) -> dict[str, Any]:
    """The latest value of each facet (texts oldest first), sorted; Upriver's own bookkeeping facets left out."""
    out: dict[str, Any] = {}
    for text in texts:
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.update({k: v for k, v in doc.items() if not k.startswith("upriver")})
    return dict(sorted(out.items()))


def node_json(canonical: str, row: Sequence[Any], aliases: Aliases, facets: dict[str, Any]) -> dict[str, Any]:
    """A node's attributes from its `queries.node_row`, its other names and its facets."""
    ref = identity.parse(canonical)
    (_, kind, first, last, written, retired, version, owner, tags, fields, job, run) = row
    written_ms, retired_ms = ms(written), ms(retired)
    return {
        "id": canonical,
        "kind": kind,
        "namespace": ref.namespace,
        "name": ref.name,
        "aliases": [{"id": a.id, "namespace": a.namespace, "name": a.name} for a in aliases.others(canonical)],
        "first_seen": ms(first),
        "last_seen": ms(last),
        "last_written": written_ms,
        "retired_at": retired_ms,
        "retired": retired_ms is not None and (written_ms is None or retired_ms >= written_ms),
        "latest_version": version or None,
        "owner": owner or None,
        "tags": list(tags),
        "fields": list(fields),
        "producing_job": job or None,
        "producing_run": run or None,
        "facets": facets,
    }


def job_json(job_id: str, row: Sequence[Any], aliases: Aliases) -> dict[str, Any]:
    """A job vertex from its `queries.job_row`."""
    count, ns, name, ins, outs, run, status, error, latest = row
    return {
        "id": job_id,
        "kind": identity.JOB,
        "namespace": ns,
        "name": name,
        "runs": int(count),
        "inputs": sorted({aliases.canonical(str(i)) for i in ins}),
        "outputs": sorted({aliases.canonical(str(o)) for o in outs}),
        "latest_run": {"run_id": run, "status": status, "error": error, "started_at": ms(latest)},
    }


def run_json(run_id: str, row: Sequence[Any], aliases: Aliases) -> dict[str, Any]:
    """One run from its `queries.run_row`; unreadable facets read as none."""
    job, ns, name, kind, status, started, ended, error, parent, in_ids, in_v, out_ids, out_v, facets = row
    try:
        facet_doc = json.loads(facets) if facets else {}
    except ValueError:
        facet_doc = {}
    return {
        "run_id": run_id,
        "job": {"id": job, "namespace": ns, "name": name, "kind": kind},
        "status": status,
        "started_at": int(started),
        "ended_at": None if ended is None else int(ended),
        "error": error,
        "parent_run_id": parent,
        "inputs": refs(aliases, in_ids, in_v),
        "outputs": refs(aliases, out_ids, out_v),
        "facets": facet_doc,
    }


def versions_json(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """`queries.version_rows` as dicts; only COMPLETE runs produced their version."""
    return [
        {"version": v or None, "run_id": r, "job": j, "status": s, "error": e, "started_at": int(t),
         "produced": s == "COMPLETE"}
        for v, r, j, s, e, t in rows
    ]  # fmt: skip


def column_edges_json(rows: Iterable[Sequence[Any]], aliases: Aliases) -> list[dict[str, Any]]:
    """`queries.column_edges` with canonical ids, each (src, dst, type, subtype) once, `COLUMN_` dropped."""
    out: dict[tuple[str, str, str, str | None], None] = {}
    for src, dst, etype, sub in rows:
        key = (aliases.canonical(str(src)), aliases.canonical(str(dst)), str(etype)[len("COLUMN_") :], sub)
        out[key] = None
    return [{"src": s_, "dst": d, "type": t, "subtype": sub} for s_, d, t, sub in out]
