"""The condition of every alert kind (processors/health/kinds.py): its onset and its reason.

`onset(state, rules, kind, subject)` is when the condition began to hold for `subject` given the facts
applied so far, or None if it does not hold; `reason` is the alert's text and path. Both are pure: they
read the state and decide nothing else. `swept_kinds(node)` lists the kinds a timer pass checks for an
artifact (the only ones that can hold for it).
"""

from __future__ import annotations

from collections.abc import Callable

from processors.health import freshness, kinds
from processors.health.facts import REQUIRES_UPSTREAM
from processors.health.freshness import Rules
from processors.health.state import HealthState, Node

Onset = Callable[[HealthState, Rules, str], int | None]
Reason = Callable[[HealthState, Rules, str], tuple[str, list[str]]]


def onset(state: HealthState, rules: Rules, kind: str, subject: str) -> int | None:
    try:
        decide = ONSETS[kind]
    except KeyError:
        raise ValueError(f"unknown alert kind {kind!r}") from None
    return decide(state, rules, subject)


def reason(state: HealthState, rules: Rules, kind: str, subject: str) -> tuple[str, list[str]]:
    return REASONS[kind](state, rules, subject)


def swept_kinds(node: Node) -> tuple[str, ...]:
    """The artifact kinds a timer pass syncs for `node` (conditions clear at facts, which sync every kind)."""
    ups = node.kind in REQUIRES_UPSTREAM and not node.produced
    if node.serving is not None:
        return _SWEPT[ups, node.drift is not None] + ("UNREGISTERED_MODEL", "STALE_MODEL")
    return _SWEPT[ups, node.drift is not None]


_SWEPT = {
    (ups, drift): ("STALE", "UNUSED") + (("MISSING_UPSTREAM",) if ups else ()) + (("DRIFT_IMPACT",) if drift else ())
    for ups in (False, True)
    for drift in (False, True)
}


# ---- onsets ---------------------------------------------------------------------------------------


def _live(state: HealthState, nid: str) -> Node | None:
    node = state.nodes.get(nid)
    return None if node is None or node.retired_at is not None else node


def _incomplete_run(state: HealthState, rules: Rules, job: str) -> int | None:
    runs = state.open_runs.get(job)
    return min(runs.values()) + rules.config.run_timeout_ms if runs else None


def _missing_io(state: HealthState, rules: Rules, job: str) -> int | None:
    m = state.missing_io.get(job)
    return m.since if m else None


def _stale(state: HealthState, rules: Rules, nid: str) -> int | None:
    node = _live(state, nid)
    if node is None:
        return None
    limit = freshness.sla(node, nid, rules)[0]
    if limit is None:
        return None
    return (node.updates[-1] if node.updates else node.first_seen) + limit


def _missing_upstream(state: HealthState, rules: Rules, nid: str) -> int | None:
    node = _live(state, nid)
    if node is None or node.kind not in REQUIRES_UPSTREAM or node.produced:
        return None
    return node.first_seen + rules.config.upstream_grace_ms


def _unused(state: HealthState, rules: Rules, nid: str) -> int | None:
    node = _live(state, nid)
    return None if node is None else node.last_touch + rules.unused_after(node, nid)


def _drift_impact(state: HealthState, rules: Rules, nid: str) -> int | None:
    node = _live(state, nid)
    if node is None or node.drift is None or (node.updates and node.updates[-1] > node.drift.at):
        return None
    return int(node.drift.at)


def _unregistered_model(state: HealthState, rules: Rules, nid: str) -> int | None:
    node = _live(state, nid)
    if node is None or node.serving is None:
        return None
    serving = node.serving
    reg = state.nodes.get(serving.model)
    registered = reg is not None and (serving.version is None or serving.version in reg.versions)
    return None if registered else int(serving.deployed_at)


def _stale_model(state: HealthState, rules: Rules, nid: str) -> int | None:
    """The first time an artifact version the served model version was trained on was superseded, plus the lag."""
    node = _live(state, nid)
    if node is None or node.serving is None:
        return None
    model, version = node.serving.model, node.serving.version
    trained = state.nodes.get(model)
    inputs = trained.trained.get(version, []) if trained is not None and version is not None else []
    newest: int | None = None
    for src, sversion in inputs:
        s = state.nodes.get(src)
        if s is None or sversion not in s.versions:
            continue
        since = s.versions[sversion]
        newer = [x for v, x in s.versions.items() if v != sversion and x > since]
        if newer:
            first = min(newer)
            newest = first if newest is None else min(newest, first)
    return None if newest is None else newest + rules.config.model_lag_ms


ONSETS: dict[str, Onset] = {
    "STALE": _stale,
    "MISSING_UPSTREAM": _missing_upstream,
    "UNUSED": _unused,
    "DRIFT_IMPACT": _drift_impact,
    "UNREGISTERED_MODEL": _unregistered_model,
    "STALE_MODEL": _stale_model,
    "INCOMPLETE_RUN": _incomplete_run,
    "MISSING_IO": _missing_io,
}


# ---- reasons --------------------------------------------------------------------------------------


def _stale_reason(state: HealthState, rules: Rules, nid: str) -> tuple[str, list[str]]:
    node = state.nodes[nid]
    limit, source = freshness.sla(node, nid, rules)
    last = node.last_update
    return f"no update since {last} (SLA {limit} ms, {source})" if last else f"never updated (SLA {limit} ms)", []


def _drift_reason(state: HealthState, rules: Rules, nid: str) -> tuple[str, list[str]]:
    drift = state.nodes[nid].drift
    assert drift is not None  # the condition holds
    return f"drift on {drift.source} at {drift.at} reaches it", list(drift.path)


def _serving_reason(why: str) -> Reason:
    def explain(state: HealthState, rules: Rules, nid: str) -> tuple[str, list[str]]:
        serving = state.nodes[nid].serving
        assert serving is not None  # the condition holds
        return f"serves {serving.model}@{serving.version}, {why}", [serving.model, nid]

    return explain


def _incomplete_reason(state: HealthState, rules: Rules, job: str) -> tuple[str, list[str]]:
    runs = state.open_runs[job]
    oldest = min(runs, key=lambda r: (runs[r], r))
    return f"{len(runs)} run(s) not finished within the timeout; oldest {oldest}", []


def _missing_io_reason(state: HealthState, rules: Rules, job: str) -> tuple[str, list[str]]:
    missing = state.missing_io[job].missing
    return "declared inputs/outputs missing: " + ", ".join(missing), list(missing)


REASONS: dict[str, Reason] = {
    "STALE": _stale_reason,
    "MISSING_UPSTREAM": lambda state, rules, nid: (f"{state.nodes[nid].kind} has no upstream lineage", []),
    "UNUSED": lambda state, rules, nid: (f"no run read or wrote it since {state.nodes[nid].last_touch}", []),
    "DRIFT_IMPACT": _drift_reason,
    "UNREGISTERED_MODEL": _serving_reason("which no run registered"),
    "STALE_MODEL": _serving_reason("trained on data that has newer versions"),
    "INCOMPLETE_RUN": _incomplete_reason,
    "MISSING_IO": _missing_io_reason,
}

if set(ONSETS) != set(kinds.NAMES) or set(REASONS) != set(kinds.NAMES):
    raise RuntimeError("every alert kind of processors/health/kinds.py needs an onset and a reason here")
