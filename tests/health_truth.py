"""What the health processor must report for a simulated workload, worked out from the simulator's truth.

Written for obviousness, not speed, and independently of processors/health/: every condition is a
function of *the facts up to a time* (`state(< c)` or `state(<= c)`) evaluated from the simulator's
own record of its runs, and alerts follow docs/health.md's contract — opened at the condition's onset,
resolved at the fact that cleared it, one open alert per (kind, subject). Tests compare the pipeline's
alerts and drift links with `expected_alerts` and `expected_drift_links`.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from producers.truth import Truth, TruthRun
from schemas import identity

REQUIRES_UPSTREAM = {"MODEL", "DEPLOYMENT", "ENDPOINT", "EMBEDDING", "VECTOR_INDEX"}
DRIFT_TARGETS = {"MODEL", "DEPLOYMENT", "ENDPOINT"}
SERVING = {"DEPLOYMENT", "ENDPOINT"}

# the alert kinds worked out here, of those processors/health/kinds.py declares (tests/unit/test_health_kinds.py
# checks they agree); MISSING_IO needs declared inputs/outputs, which the simulator never declares
ARTIFACT_KINDS = ("STALE", "MISSING_UPSTREAM", "UNUSED", "DRIFT_IMPACT", "UNREGISTERED_MODEL", "STALE_MODEL")
JOB_KINDS = ("INCOMPLETE_RUN",)
NOT_SIMULATED = ("MISSING_IO",)

AlertKey = tuple[str, str, int, int | None]  # kind, subject, opened_at, resolved_at
LinkKey = tuple[int, str, str, str | None, int]  # signal time, source, target, target version, distance


@dataclass(frozen=True)
class Durations:
    """The health settings the expectations are worked out for (the processor's rules file says the same)."""

    run_timeout_ms: int
    upstream_grace_ms: int
    unused_after_ms: int
    model_lag_ms: int
    learn_min_updates: int = 5
    learn_factor: float = 3.0
    learn_floor_ms: int = 60_000


def kind_of(node: str) -> str:
    return identity.kind_of(node).upper()


class _Facts:
    def __init__(self, truth: Truth) -> None:
        self.runs = [(rid, r) for rid, r in truth.runs.items() if not rid.startswith("signal-")]
        self.complete = sorted(
            ((r.ended_at, rid, r) for rid, r in self.runs if r.status == "COMPLETE" and r.ended_at is not None),
            key=lambda x: (x[0], x[1]),
        )
        self.signals = sorted((t, kind, node) for kind, node, t in truth.signals)

    def complete_in(self, c: int, inclusive: bool) -> list[tuple[int, str, TruthRun]]:
        return [x for x in self.complete if x[0] < c or (inclusive and x[0] == c)]

    def signals_in(self, c: int, inclusive: bool) -> list[tuple[int, str, str]]:
        return [x for x in self.signals if x[0] < c or (inclusive and x[0] == c)]


def _edges_before(facts: _Facts, t: int) -> dict[str, set[str]]:
    """Downstream adjacency over the edges valid just before `t` (runs that ended before it)."""
    done = facts.complete_in(t, inclusive=False)
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for _, rid, r in done:
        for _, dst, _ in r.pairs:
            if dst not in r.append:
                newest[(dst, r.job)] = max(newest.get((dst, r.job), (-1, "")), (r.started_at, rid))
    retired: dict[str, list[int]] = defaultdict(list)
    for at, kind, node in facts.signals_in(t, inclusive=False):
        if kind == "RETIRE":
            retired[node].append(at)
    out: dict[str, set[str]] = defaultdict(set)
    for _, rid, r in done:
        for src, dst, _ in r.pairs:
            if dst not in r.append and newest[(dst, r.job)] != (r.started_at, rid):
                continue
            if any(r.started_at <= at for n in (src, dst) for at in retired.get(n, ())):
                continue
            out[src].add(dst)
    return out


def _latest_version(facts: _Facts, node: str, t: int) -> str | None:
    best: tuple[int, str, str | None] | None = None
    for _, rid, r in facts.complete_in(t, inclusive=False):
        for n, version in r.outputs:
            if n == node and (best is None or (r.started_at, rid) > best[:2]):
                best = (r.started_at, rid, version)
    return best[2] if best else None


def expected_drift_links(truth: Truth, settled: int) -> set[LinkKey]:
    """(signal time, drifted node, model or deployment reached, its version then, hops) per DRIFT signal."""
    facts = _Facts(truth)
    out: set[LinkKey] = set()
    for t, kind, source in facts.signals:
        if kind != "DRIFT" or t > settled:
            continue
        adjacency = _edges_before(facts, t)
        dist = {source: 0}
        frontier = [source]
        while frontier:
            nxt = []
            for n in frontier:
                for m in adjacency.get(n, ()):
                    if m not in dist:
                        dist[m] = dist[n] + 1
                        nxt.append(m)
            frontier = nxt
        for target, d in dist.items():
            if d and kind_of(target) in DRIFT_TARGETS:
                out.add((t, source, target, _latest_version(facts, target, t), d))
    return out


def expected_alerts(truth: Truth, settled: int, cfg: Durations) -> set[AlertKey]:
    """Every alert (open at `settled`, or opened and resolved before it) the processor must publish."""
    facts = _Facts(truth)
    links = expected_drift_links(truth, settled)
    drift_hits: dict[str, list[int]] = defaultdict(list)
    for t, _, target, _, _ in links:
        drift_hits[target].append(t)

    def writes(node: str, c: int, inc: bool) -> list[tuple[int, str, TruthRun]]:
        return [x for x in facts.complete_in(c, inc) if any(n == node for n, _ in x[2].outputs)]

    def touches(node: str, c: int, inc: bool) -> list[int]:
        runs = [t for t, _, r in facts.complete_in(c, inc) if any(n == node for n, _ in (*r.inputs, *r.outputs))]
        return runs + [t for t, _, n in facts.signals_in(c, inc) if n == node]

    def retired(node: str, c: int, inc: bool) -> bool:
        return any(k == "RETIRE" and n == node for _, k, n in facts.signals_in(c, inc))

    def stale(node: str, c: int, inc: bool) -> int | None:
        times = [t for t, _, _ in writes(node, c, inc)]
        if retired(node, c, inc) or len(times) < cfg.learn_min_updates:
            return None
        last = times[-17:]
        median = statistics.median(b - a for a, b in itertools.pairwise(last))
        return times[-1] + max(cfg.learn_floor_ms, int(cfg.learn_factor * median))

    def missing_upstream(node: str, c: int, inc: bool) -> int | None:
        seen = touches(node, c, inc)
        if kind_of(node) not in REQUIRES_UPSTREAM or not seen or retired(node, c, inc):
            return None
        produced = any(any(i != node for i, _ in r.inputs) for _, _, r in writes(node, c, inc))
        return None if produced else min(seen) + cfg.upstream_grace_ms

    def unused(node: str, c: int, inc: bool) -> int | None:
        # read or written by a run; a signal does not count, except that it may be how the node was first seen
        seen = touches(node, c, inc)
        if not seen or retired(node, c, inc):
            return None
        by_runs = [t for t, _, r in facts.complete_in(c, inc) if any(n == node for n, _ in (*r.inputs, *r.outputs))]
        return max([*by_runs, min(seen)]) + cfg.unused_after_ms

    def drift_impact(node: str, c: int, inc: bool) -> int | None:
        hits = [t for t in drift_hits.get(node, ()) if t < c or (inc and t == c)]
        if not hits or retired(node, c, inc):
            return None
        last = max(hits)
        return None if any(t > last for t, _, _ in writes(node, c, inc)) else last

    def serving(node: str, c: int, inc: bool) -> tuple[str, str | None, int] | None:
        deploys = [
            (t, min((n, v) for n, v in r.inputs if kind_of(n) == "MODEL"))
            for t, _, r in writes(node, c, inc)
            if any(kind_of(n) == "MODEL" for n, _ in r.inputs)
        ]
        if kind_of(node) not in SERVING or not deploys or retired(node, c, inc):
            return None
        t, (model, version) = deploys[-1]
        return model, version, t

    def registered(model: str, version: str, c: int, inc: bool) -> list[tuple[int, str, TruthRun]]:
        return [x for x in writes(model, c, inc) if (model, version) in x[2].outputs]

    def unregistered(node: str, c: int, inc: bool) -> int | None:
        s = serving(node, c, inc)
        if s is None or s[1] is None:
            return None
        return None if registered(s[0], s[1], c, inc) else s[2]

    def first_written(node: str, c: int, inc: bool) -> dict[str, int]:
        out: dict[str, int] = {}
        for t, _, r in writes(node, c, inc):
            for n, v in r.outputs:
                if n == node and v is not None:
                    out.setdefault(v, t)
        return out

    def stale_model(node: str, c: int, inc: bool) -> int | None:
        s = serving(node, c, inc)
        if s is None or s[1] is None:
            return None
        training = registered(s[0], s[1], c, inc)
        if not training:
            return None
        onset: int | None = None
        for src, version in training[-1][2].inputs:
            if src == s[0] or version is None:
                continue
            versions = first_written(src, c, inc)
            if version not in versions:
                continue
            newer = [t for v, t in versions.items() if v != version and t > versions[version]]
            if newer:
                onset = min(newer) if onset is None else min(onset, min(newer))
        return None if onset is None else onset + cfg.model_lag_ms

    def incomplete(job: str, c: int, inc: bool) -> int | None:
        open_runs = [
            r.started_at
            for _, r in facts.runs
            if r.job == job
            and (r.started_at < c or (inc and r.started_at == c))
            and (r.ended_at is None or not (r.ended_at < c or (inc and r.ended_at == c)))
        ]
        return min(open_runs) + cfg.run_timeout_ms if open_runs else None

    nodes = {n for _, _, r in facts.complete for n, _ in (*r.inputs, *r.outputs)} | {n for _, _, n in facts.signals}
    fact_times = sorted({t for t, _, _ in facts.complete} | {t for t, _, _ in facts.signals})
    run_times = sorted({t for _, r in facts.runs for t in (r.started_at, r.ended_at) if t is not None})
    out: set[AlertKey] = set()
    node_kinds: dict[str, Callable[[str, int, bool], int | None]] = {
        "STALE": stale,
        "MISSING_UPSTREAM": missing_upstream,
        "UNUSED": unused,
        "DRIFT_IMPACT": drift_impact,
        "UNREGISTERED_MODEL": unregistered,
        "STALE_MODEL": stale_model,
    }
    assert tuple(node_kinds) == ARTIFACT_KINDS
    touched: dict[str, set[int]] = defaultdict(set)
    for t, _, r in facts.complete:
        for n, _ in (*r.inputs, *r.outputs):
            touched[n].add(t)
    for t, _, n in facts.signals:
        touched[n].add(t)
    for kind, onset in node_kinds.items():
        for node in sorted(nodes):
            if kind in ("UNREGISTERED_MODEL", "STALE_MODEL"):
                if kind_of(node) not in SERVING:
                    continue
                times = fact_times  # its model's and the model's training data's facts count too
            else:
                times = sorted(touched[node] | set(drift_hits.get(node, ())))
            out |= _alerts(kind, node, onset, times, settled)
    for job in sorted({r.job for _, r in facts.runs}):
        out |= _alerts("INCOMPLETE_RUN", "job:" + job, lambda j, c, i: incomplete(j[4:], c, i), run_times, settled)
    return out


def _alerts(
    kind: str, subject: str, onset: Callable[[str, int, bool], int | None], times: list[int], settled: int
) -> set[AlertKey]:
    """Alerts of one (kind, subject): at each fact time the condition is checked before and after the
    facts of that time; opened at its onset, resolved at the fact time it stops holding."""
    out: set[AlertKey] = set()
    opened: int | None = None
    for c in [t for t in times if t <= settled] + [settled]:
        before = onset(subject, c, False)
        if opened is None and before is not None and before <= c:
            opened = before
        after = onset(subject, c, True)
        holds = after is not None and after <= c
        if opened is not None and not holds:
            out.add((kind, subject, opened, c))
            opened = None
        elif opened is None and holds and after is not None:
            opened = after
    if opened is not None:
        out.add((kind, subject, opened, None))
    return out
