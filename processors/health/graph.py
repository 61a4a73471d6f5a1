"""Walks over the lineage graph the health state holds, as of the facts applied so far.

An edge src -> dst is valid while the newest valid run of some job writing dst read src (or an
append-mode run did), after either end's retirement (docs/lineage-model.md). `walk` gives the nodes
reachable downstream or upstream, nearest first, each with a shortest path; `root_causes` ranks the
upstream candidates for a signal on a model or deployment; `link` is the DriftLink record. Pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from processors.health.state import NEVER, Node
from schemas import identity

ROOT_CAUSES_KEPT = 10


@dataclass(frozen=True, slots=True)
class Signal:
    """A drift or quality drop: the signal's run id and type, the node it is about, its version, time."""

    signal_id: str
    signal_type: str
    source: str
    source_version: str | None
    at: int


def edge_valid(nodes: Mapping[str, Node], src: str, dst: str) -> bool:
    d = nodes[dst]
    retired = max(nodes[src].retired_at or NEVER, d.retired_at or NEVER)
    for w in d.writers.values():
        if w.started_at > retired and src in w.inputs:
            return True
    return d.appends.get(src, NEVER) > retired


def walk(nodes: Mapping[str, Node], start: str, downstream: bool) -> Iterator[tuple[str, list[str]]]:
    """Nodes reachable from `start` over valid edges, nearest first, each with a shortest path."""
    parent: dict[str, str] = {start: start}
    frontier = deque([start])
    while frontier:
        n = frontier.popleft()
        if downstream:
            nxt = sorted(d for d in nodes[n].readers if edge_valid(nodes, n, d))
        else:
            node = nodes[n]
            ups = {s for w in node.writers.values() for s in w.inputs} | set(node.appends)
            nxt = sorted(u for u in ups if u in nodes and edge_valid(nodes, u, n))
        for m in nxt:
            if m in parent:
                continue
            parent[m] = n
            path = [m]
            while path[-1] != start:
                path.append(parent[path[-1]])
            yield m, path[::-1] if downstream else path
            frontier.append(m)


def root_causes(nodes: Mapping[str, Node], subject: str, t: int, window_ms: int) -> list[tuple[str, str, list[str]]]:
    """(why, upstream node, path) of the top candidates for a signal on `subject` at `t`: upstream nodes
    with a drop (DRIFT) or a write (CHANGE) within the window, by distance, then recency, then id."""
    since = t - window_ms
    candidates: list[tuple[int, int, str, str, list[str]]] = []
    for up, path in walk(nodes, subject, downstream=False):
        node = nodes[up]
        dist = len(path) - 1
        drift = [x for x in node.signals if since <= x <= t]
        change = [x for x in node.updates if since <= x <= t]
        if drift:
            candidates.append((dist, -max(drift), "DRIFT", up, path))
        elif change:
            candidates.append((dist, -max(change), "CHANGE", up, path))
    candidates.sort(key=lambda c: (c[0], c[1], c[3]))
    return [(why, up, path) for _, _, why, up, path in candidates[:ROOT_CAUSES_KEPT]]


def link(nodes: Mapping[str, Node], signal: Signal, direction: str, target: str, path: list[str],
         rank: int) -> dict[str, Any]:  # fmt: skip
    """The DriftLink record (schemas/drift_link.avsc, less `linked_at`) from a signal to a node it reaches."""
    node = nodes.get(target)
    return {
        "signal_id": signal.signal_id,
        "signal_type": signal.signal_type,
        "source": signal.source,
        "source_version": signal.source_version,
        "signal_time": signal.at,
        "direction": direction,
        "target": target,
        "target_kind": node.kind if node is not None else identity.parse(target).kind,
        "target_version": node.latest.version if node is not None and node.latest is not None else None,
        "distance": len(path) - 1,
        "path": path,
        "rank": rank,
    }
