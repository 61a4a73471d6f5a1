"""The simulator's ground truth: what it emitted, and what the pipeline must therefore store and answer.

The expected edges are stated by producers/simulator.py from the jobs' meaning, independently of the
processor's code, and `Truth.valid_edges` applies docs/lineage-model.md's time-travel rules on its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from schemas import identity
from schemas.model import node_id

SOURCES = ("events", "accounts", "transactions")
NOT_VALID = ("FAIL", "ABORT")
Pair = tuple[str, str, str]  # src, dst, edge type


@dataclass
class TruthRun:
    job: str
    job_kind: str
    started_at: int
    status: str
    inputs: tuple[tuple[str, str | None], ...]
    outputs: tuple[tuple[str, str | None], ...]
    append: frozenset[str]
    pairs: tuple[Pair, ...]
    ended_at: int | None = None  # the time of its last event; None while it has not ended


@dataclass
class NodeTruth:
    kind: str
    owner: str | None = None
    tags: set[str] = field(default_factory=set)
    latest_version: str | None = None
    version_time: int = -1
    producing_job: str | None = None
    produced_at: tuple[int, str] = (-1, "")


@dataclass
class Truth:
    """What the simulator emitted and what the pipeline must therefore store and answer."""

    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    failed_runs: int = 0
    edge_rows_emitted: int = 0  # counted even when record_truth is False
    edges: set[Pair] = field(default_factory=set)
    edge_rows: set[tuple[str, str, str, str]] = field(default_factory=set)  # + run_id
    column_edges: set[Pair] = field(default_factory=set)
    malformed_kinds: dict[str, int] = field(default_factory=dict)
    runs: dict[str, TruthRun] = field(default_factory=dict)
    signals: list[tuple[str, str, int]] = field(default_factory=list)  # (type, node, time)
    nodes: dict[str, NodeTruth] = field(default_factory=dict)
    production_model: str = ""
    production_deployment: str = ""
    rag_deployment: str = ""
    teams: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()

    # ---- named nodes --------------------------------------------------------------------------

    @staticmethod
    def raw_tables(team: str) -> list[str]:
        return [node_id("DATASET", "warehouse", f"{team}.raw_{s}") for s in SOURCES]

    @staticmethod
    def model(team: str) -> str:
        return node_id("MODEL", "registry", f"{team}_model")

    @staticmethod
    def deployment(team: str) -> str:
        return node_id("DEPLOYMENT", "serving", f"{team}-model-api")

    @staticmethod
    def document_source(app: str) -> str:
        return node_id("DATASET", "confluence", f"{app}-space")

    @staticmethod
    def prompt(app: str) -> str:
        return node_id("PROMPT", "prompts", f"{app}.answer")

    def training_runs(self, model: str) -> list[tuple[int, str, frozenset[str]]]:
        """Valid runs that wrote `model`, oldest first: (started_at, run_id, input node ids)."""
        out = [
            (r.started_at, rid, frozenset(n for n, _ in r.inputs))
            for rid, r in self.runs.items()
            if r.job_kind == "TRAIN" and r.status not in NOT_VALID and any(n == model for n, _ in r.outputs)
        ]
        return sorted(out)

    # ---- the time-travel oracle (docs/lineage-model.md), written for obviousness ----------------

    def valid_edges(self, as_of: int | None = None) -> set[Pair]:
        t = as_of if as_of is not None else 2**62
        newest: dict[tuple[str, str], tuple[int, str]] = {}
        for rid, r in self.runs.items():
            if r.status in NOT_VALID or r.started_at > t:
                continue
            for _, dst, _ in r.pairs:
                if dst not in r.append:
                    key = (dst, r.job)
                    newest[key] = max(newest.get(key, (-1, "")), (r.started_at, rid))
        retired: dict[str, list[int]] = defaultdict(list)
        for kind, node, at in self.signals:
            if kind == "RETIRE":
                retired[node].append(at)
        out: set[Pair] = set()
        for rid, r in self.runs.items():
            if r.status in NOT_VALID or r.started_at > t:
                continue
            for src, dst, etype in r.pairs:
                if dst not in r.append and newest[(dst, r.job)] != (r.started_at, rid):
                    continue
                if any(r.started_at <= at <= t for n in (src, dst) for at in retired.get(n, ())):
                    continue
                out.add((src, dst, etype))
        return out

    def _walk(self, node: str, as_of: int | None, upstream: bool) -> set[str]:
        nxt: dict[str, set[str]] = defaultdict(set)
        for src, dst, _ in self.valid_edges(as_of):
            if upstream:
                nxt[dst].add(src)
            else:
                nxt[src].add(dst)
        seen: set[str] = set()
        frontier = [node]
        while frontier:
            frontier = [p for n in frontier for p in nxt.get(n, ()) if p not in seen and p != node]
            seen.update(frontier)
        return seen

    def upstream(self, node: str, as_of: int | None = None) -> set[str]:
        """Every node upstream of `node` over the edges valid at `as_of` (not including `node`)."""
        return self._walk(node, as_of, upstream=True)

    def downstream(self, node: str, as_of: int | None = None) -> set[str]:
        return self._walk(node, as_of, upstream=False)

    def impact(self, node: str, as_of: int | None = None) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for n in self.downstream(node, as_of):
            out[identity.kind_of(n)].add(n)
        return dict(out)
