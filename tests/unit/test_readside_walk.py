"""The lineage walk (upriver/readside/walk.py) over an in-memory port, no ClickHouse: levels and depth
limits, truncation, a cycle, shortest paths, as-of, retirements, alias groups, job vertices, node caps,
and one port call per level. Every expected value is worked out by hand from GRAPH below."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from upriver.readside import walk
from upriver.readside.aliases import Aliases
from upriver.readside.model import Direction, EdgeRow, NodeNotFound

S, T1, T2 = "dataset:lake/src", "dataset:wh/t1", "dataset:wh/t2"
F, M, D = "feature:fs/f", "model:reg/m", "deployment:prod/d"
C1, C2, C3 = "report:cyc/c1", "report:cyc/c2", "report:cyc/c3"
ETL, FEAT, TRAIN, DEPLOY, CHECK, CYC = (f"job:ns/{j}" for j in ("etl", "feat", "train", "deploy", "check", "cyc"))

#   S -> T1 -> F -> M -> D          F -> C1 -> C2 -> C3 -> C1 (a cycle)
#   S -> T2 -> F
# (src, dst, edge_type, valid_from, job)
GRAPH: list[EdgeRow] = [
    (S, T1, "DERIVED_FROM", 10, ETL),
    (S, T2, "DERIVED_FROM", 10, ETL),
    (T1, F, "DERIVED_FROM", 20, FEAT),
    (T2, F, "DERIVED_FROM", 20, FEAT),
    (F, M, "TRAINED_ON", 30, TRAIN),
    (M, D, "DEPLOYED_AS", 40, DEPLOY),
    (F, C1, "EVALUATED_ON", 20, CYC),
    (C1, C2, "DERIVED_FROM", 20, CYC),
    (C2, C3, "DERIVED_FROM", 20, CYC),
    (C3, C1, "DERIVED_FROM", 20, CYC),
]
# job -> (inputs, outputs, started_at); CHECK only reads (a test)
RUNS = {
    ETL: ([S], [T1, T2], 10),
    FEAT: ([T1, T2], [F], 20),
    TRAIN: ([F], [M], 30),
    DEPLOY: ([M], [D], 40),
    CHECK: ([M], [], 45),
    CYC: ([F], [C1, C2, C3], 20),
}


class MemoryPort:
    """walk.LineagePort over lists; an edge row is valid at t when its valid_from <= t. Records each call."""

    def __init__(
        self,
        edges: list[EdgeRow],
        pairs: Sequence[tuple[str, str]] = (),
        retired: dict[str, list[int]] | None = None,
        runs: dict[str, tuple[list[str], list[str], int]] | None = None,
    ) -> None:
        self.edges, self.pairs, self.retired, self.runs = edges, list(pairs), retired or {}, runs or {}
        self.calls: list[tuple[str, Any]] = []

    def aliases(self) -> Aliases:
        self.calls.append(("aliases", None))
        return Aliases(self.pairs)

    def walk_context(self) -> tuple[Aliases, dict[str, list[int]]]:
        self.calls.append(("walk_context", None))
        return Aliases(self.pairs), self.retired

    def _valid(self, as_of: int | None) -> Iterator[EdgeRow]:
        return (e for e in self.edges if as_of is None or e[3] <= as_of)

    def edges_into(self, ids: list[str], as_of: int | None) -> list[EdgeRow]:
        self.calls.append(("edges_into", sorted(ids)))
        return [e for e in self._valid(as_of) if e[1] in ids]

    def edges_out_of(self, ids: list[str], as_of: int | None) -> list[EdgeRow]:
        self.calls.append(("edges_out_of", sorted(ids)))
        return [e for e in self._valid(as_of) if e[0] in ids]

    def first_dsts(self, ids: list[str], limit: int, after: str | None = None) -> list[str]:
        self.calls.append(("first_dsts", (sorted(ids), limit, after)))
        return sorted({e[1] for e in self.edges if e[0] in ids and (after is None or e[1] > after)})[:limit]

    def job_artifacts(self, job: str, direction: Direction, as_of: int | None) -> list[str]:
        self.calls.append(("job_artifacts", job))
        ins, outs, started = self.runs[job]
        return [] if as_of is not None and started > as_of else (ins if direction == "upstream" else outs)

    def any_edges(self, ids: list[str], direction: Direction) -> bool:
        self.calls.append(("any_edges", sorted(ids)))
        return any((e[1] if direction == "upstream" else e[0]) in ids for e in self.edges)

    def node_exists(self, node_id: str, aliases: Aliases) -> bool:
        self.calls.append(("node_exists", node_id))
        names = set(aliases.names(node_id))
        return node_id in self.runs or any(names & {e[0], e[1]} for e in self.edges)

    def jobs_touching(self, ids: list[str], aliases: Aliases) -> dict[str, dict[str, Any]]:
        self.calls.append(("jobs_touching", sorted(ids)))
        return {
            job: {"namespace": "ns", "name": job.rpartition("/")[2], "inputs": set(ins), "outputs": set(outs),
                  "status": "COMPLETE"}
            for job, (ins, outs, _) in self.runs.items()
            if set(ins + outs) & set(ids)
        }  # fmt: skip


@pytest.fixture
def port() -> MemoryPort:
    return MemoryPort(GRAPH, runs=RUNS)


def test_upstream_level_by_level_with_depth_limits(port: MemoryPort) -> None:
    one = walk.walk(port, M, "upstream", 1, None)
    assert one.nodes == {M: 0, F: 1}
    assert one.edges == [(F, M, "TRAINED_ON")]
    assert one.truncated  # F has parents not followed
    two = walk.walk(port, M, "upstream", 2, None)
    assert two.nodes == {M: 0, F: 1, T1: 2, T2: 2}
    assert two.truncated  # T1 and T2 come from S
    three = walk.walk(port, M, "upstream", 3, None)
    assert three.nodes == {M: 0, F: 1, T1: 2, T2: 2, S: 3}
    assert not three.truncated  # S is a source
    assert walk.walk(port, M, "upstream", 10, None) == replace(three, depth=10)


def test_downstream_of_the_source_reaches_everything_once(port: MemoryPort) -> None:
    g = walk.walk(port, S, "downstream", 10, None)
    assert g.nodes == {S: 0, T1: 1, T2: 1, F: 2, M: 3, C1: 3, D: 4, C2: 4, C3: 5}
    assert sorted(g.edges) == sorted((s, d, t) for s, d, t, _, _ in GRAPH)  # every edge once, C3 -> C1 too
    assert not g.truncated
    assert g.edge_jobs[(F, M, "TRAINED_ON")] == [TRAIN]
    shallow = walk.walk(port, S, "downstream", 2, None)
    assert shallow.nodes == {S: 0, T1: 1, T2: 1, F: 2}
    assert shallow.truncated


def test_a_cycle_ends_and_depth_zero_is_the_root(port: MemoryPort) -> None:
    g = walk.walk(port, C1, "downstream", 10, None)
    assert g.nodes == {C1: 0, C2: 1, C3: 2}
    assert g.edges == [(C1, C2, "DERIVED_FROM"), (C2, C3, "DERIVED_FROM"), (C3, C1, "DERIVED_FROM")]
    assert not g.truncated
    # at depth 2 C3 -> C1 is not followed: truncated, even though it leads back to a node already seen
    assert walk.walk(port, C1, "downstream", 2, None).truncated
    up = walk.walk(port, C1, "upstream", 10, None)
    assert up.nodes == {C1: 0, F: 1, C3: 1, T1: 2, T2: 2, C2: 2, S: 3}
    zero = walk.walk(port, M, "upstream", 0, None)
    assert (zero.nodes, zero.edges, zero.truncated) == ({M: 0}, [], True)
    with pytest.raises(ValueError, match="depth"):
        walk.walk(port, M, "upstream", -1, None)


def test_unknown_nodes_and_sources(port: MemoryPort) -> None:
    with pytest.raises(NodeNotFound):
        walk.walk(port, "model:reg/nope", "upstream", 3, None)
    with pytest.raises(NodeNotFound):
        walk.walk(port, "model:reg/nope", "downstream", 0, None)
    assert walk.walk(port, S, "upstream", 3, None).nodes == {S: 0}  # known, nothing upstream: no error


def test_one_port_call_per_level_with_the_whole_frontier(port: MemoryPort) -> None:
    walk.walk(port, M, "upstream", 10, None)
    assert port.calls == [
        ("walk_context", None),  # aliases and retirements in one read
        ("edges_into", [M]),
        ("edges_into", [F]),
        ("edges_into", [T1, T2]),
        ("edges_into", [S]),  # finds nothing: the frontier is empty, no truncation check
    ]
    port.calls.clear()
    walk.walk(port, S, "downstream", 1, None)
    assert port.calls[1:] == [("edges_out_of", [S]), ("any_edges", [T1, T2])]


def test_as_of_and_retirements() -> None:
    port = MemoryPort(GRAPH, retired={T1: [25]})
    # before the retirement at 25 both tables feed F; after it T1's edges (valid from 10 and 20) are ended
    assert set(walk.walk(port, F, "upstream", 5, as_of=24).nodes) == {F, T1, T2, S}
    assert walk.walk(port, F, "upstream", 5, None).nodes == {F: 0, T2: 1, S: 2}
    # M's training edge is valid from 30: at 25 M is known but has no upstream
    assert walk.walk(port, M, "upstream", 5, as_of=25).nodes == {M: 0}
    assert walk.walk(port, D, "upstream", 1, as_of=45).nodes == {D: 0, M: 1}


def test_alias_groups_join_rows_stored_under_either_name() -> None:
    t2_path = "dataset:file/%2Fwh%2Ft2"
    edges: list[EdgeRow] = [
        (S, t2_path, "DERIVED_FROM", 10, ETL),  # written by path
        (t2_path, T2, "DERIVED_FROM", 10, ETL),  # read by path, written by name: not an edge
        (T2, F, "DERIVED_FROM", 20, FEAT),  # read by name
    ]
    port = MemoryPort(edges, pairs=[(t2_path, T2)])
    g = walk.walk(port, F, "upstream", 5, None)
    assert g.nodes == {F: 0, T2: 1, S: 2}
    assert g.edges == [(T2, F, "DERIVED_FROM"), (S, T2, "DERIVED_FROM")]
    assert ("edges_into", sorted([T2, t2_path])) in port.calls  # one call with both names
    assert walk.walk(port, t2_path, "downstream", 5, None).nodes == {T2: 0, F: 1}  # the root is canonical


def test_shortest_path_either_way_and_its_depth_limit(port: MemoryPort) -> None:
    # two chains of 4 hops (via T1 or T2): the tie goes to the smaller meeting id, T1
    chain = [(S, T1, "DERIVED_FROM"), (T1, F, "DERIVED_FROM"), (F, M, "TRAINED_ON"), (M, D, "DEPLOYED_AS")]
    assert walk.path(port, S, D, None, 20) == chain
    assert walk.path(port, D, S, None, 20) == chain
    assert walk.path(port, S, D, None, 4) == chain
    assert walk.path(port, S, D, None, 3) is None  # 4 hops needed
    assert walk.path(port, C2, C1, None, 20) == [(C2, C3, "DERIVED_FROM"), (C3, C1, "DERIVED_FROM")]
    assert walk.path(port, T1, T2, None, 20) is None  # siblings: no chain either way
    assert walk.path(port, M, M, None, 20) == []
    assert walk.path(port, S, D, 35, 20) is None  # M -> D is valid from 40
    with pytest.raises(NodeNotFound):
        walk.path(port, S, "model:reg/nope", None, 20)


def test_impact_caps_the_nodes_past_the_root(port: MemoryPort) -> None:
    full = walk.impact(port, F, 10, None, 100)
    assert full.by_kind == {"deployment": [D], "model": [M], "report": [C1, C2, C3]}
    assert not full.partial
    capped = walk.impact(port, S, 10, None, 3)
    assert capped.levels == {S: 0, T1: 1, T2: 1, F: 2}  # three nodes besides the root, then stop
    assert capped.partial
    with pytest.raises(ValueError, match="max_nodes"):
        walk.impact(port, S, 10, None, 0)


HUB = "dataset:wiki/space"
KIDS = [f"document:wiki/doc{i:03d}" for i in range(40)]


def test_a_cut_impact_reads_the_hubs_first_level_only_up_to_the_cap() -> None:
    fan = MemoryPort(
        [(HUB, k, "DERIVED_FROM", 10, ETL) for k in KIDS] + [(k, S, "DERIVED_FROM", 10, ETL) for k in KIDS]
    )
    capped = walk.impact(fan, HUB, 10, None, 10)
    assert capped.levels == {HUB: 0, **{k: 1 for k in KIDS[:10]}}  # the first ten in id order, then cut
    assert capped.partial
    assert ("first_dsts", ([HUB], 11, None)) in fan.calls  # ten to keep, one to know it was cut
    assert ("edges_into", sorted(KIDS[:11])) in fan.calls
    assert not [c for c in fan.calls if c[0] == "edges_out_of"]  # the 40 were never all read
    full = walk.impact(fan, HUB, 10, None, 100)  # under the cap: every candidate, the next level too
    assert full.levels == {HUB: 0, **{k: 1 for k in KIDS}, S: 2} and not full.partial


def test_a_cut_impact_pages_past_candidates_that_are_not_valid() -> None:
    # the first 15 documents are written at 50 only: as of 20 they are not there, so the first page (11
    # candidates) brings no node and the next (22, after doc010) four: doc015..doc032 (18) make the answer's ten
    fan = MemoryPort([(HUB, k, "DERIVED_FROM", 50 if i < 15 else 10, ETL) for i, k in enumerate(KIDS)])
    capped = walk.impact(fan, HUB, 10, 20, 10)
    assert capped.levels == {HUB: 0, **{k: 1 for k in KIDS[15:25]}}  # the first ten valid ones, as whole
    assert capped.partial
    pages = [c[1] for c in fan.calls if c[0] == "first_dsts"]
    assert pages == [([HUB], 11, None), ([HUB], 22, KIDS[10])]
    # as of 60 every document is there: one page
    assert walk.impact(fan, HUB, 10, 60, 10).levels == {HUB: 0, **{k: 1 for k in KIDS[:10]}}


def test_a_cut_impact_whose_pages_run_out_is_the_whole_level() -> None:
    fan = MemoryPort([(HUB, k, "DERIVED_FROM", 50 if i < 35 else 10, ETL) for i, k in enumerate(KIDS)])
    found = walk.impact(fan, HUB, 10, 20, 10)  # only five valid: under the cap, complete
    assert found.levels == {HUB: 0, **{k: 1 for k in KIDS[35:]}}
    assert not found.partial


def test_job_roots_and_job_vertices(port: MemoryPort) -> None:
    g = walk.walk(port, TRAIN, "downstream", 2, None)
    assert g.nodes == {TRAIN: 0, M: 1, D: 2}
    assert g.edges == [(TRAIN, M, "WRITTEN_BY"), (M, D, "DEPLOYED_AS")]
    up = walk.walk(port, TRAIN, "upstream", 1, None)
    assert up.edges == [(F, TRAIN, "READS")]
    with_jobs = walk.with_jobs(port, walk.walk(port, M, "downstream", 1, None))
    # M -> D made by DEPLOY becomes M -READS-> DEPLOY -WRITTEN_BY-> D; CHECK only reads M, so it hangs off M
    assert with_jobs.edges == sorted([(M, DEPLOY, "READS"), (DEPLOY, D, "WRITTEN_BY"), (M, CHECK, "READS")])
    assert with_jobs.nodes == {M: 0, DEPLOY: 1, CHECK: 1, D: 2}


def test_the_walk_loads_no_clickhouse_client() -> None:
    code = (
        "import sys, upriver.readside.walk, upriver.readside.nodes, upriver.readside.render\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('clickhouse_connect', 'chdb', 'sinks')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
