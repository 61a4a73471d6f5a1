"""Run lifecycle: merge a run's events in any arrival order, and derive the run's edges. Pure.

The merged state is a function of the *set* of events merged (docs/lineage-model.md, "Runs"): every
field keeps the value of the event with the greatest ordering key for that field, and event ids already
merged are ignored, so any permutation of a run's events (and any replay) gives the same state.
`tests/unit/test_runs.py` checks this with hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from schemas import identity
from schemas.identity import node_id
from schemas.openlineage import aliases_of, is_unicode

Record = dict[str, Any]
# An artifact as merged: [kind, namespace, name, version, facets, key_time, key_event_id, has_version]
Artifact = list[Any]

TERMINAL = {"COMPLETE": 1, "ABORT": 2, "FAIL": 3}  # tie-break among terminal events at the same time
OPEN = {"OTHER": 0, "START": 1, "RUNNING": 2}
SIGNALS = frozenset({"DRIFT", "QUALITY", "DEPLOY", "RETIRE"})
NOT_VALID = frozenset({"FAIL", "ABORT"})


def _status_key(event_type: str, event_time: int, event_id: str) -> list[Any]:
    """Greater wins: terminal/signal events beat open ones; then time (terminal) or rank (open)."""
    if event_type in TERMINAL:
        return [2, event_time, TERMINAL[event_type], event_id]
    if event_type in SIGNALS:
        return [2, event_time, 0, event_id]
    return [1, OPEN.get(event_type, 0), event_time, event_id]


@dataclass(slots=True)
class RunState:
    """The merged state of one run. JSON-able via `to_json` / `from_json` (the processor's table value)."""

    run_id: str
    event_ids: list[str] = field(default_factory=list)  # sorted
    job_namespace: str = ""
    job_name: str = ""
    job_key: list[Any] = field(default_factory=list)
    job_kind: str = "OTHER"
    kind_key: list[Any] = field(default_factory=list)
    parent_run_id: str | None = None
    parent_key: list[Any] = field(default_factory=list)
    started_at: int = 0
    status: str = "OTHER"
    status_key: list[Any] = field(default_factory=list)
    status_event_id: str = ""
    status_time: int = 0
    facets: str = "{}"
    inputs: dict[str, Artifact] = field(default_factory=dict)
    outputs: dict[str, Artifact] = field(default_factory=dict)

    @property
    def revision(self) -> int:
        return len(self.event_ids)

    @property
    def job(self) -> str:
        """The job's node id (`job:namespace/name`, schemas/identity.py): supersession is per job."""
        return identity.job_id(self.job_namespace, self.job_name)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL or self.status in SIGNALS

    @property
    def ended_at(self) -> int | None:
        return self.status_time if self.terminal else None

    @property
    def error(self) -> str | None:
        if self.status not in NOT_VALID or '"errorMessage"' not in self.facets:
            return None
        try:
            message = json.loads(self.facets)["errorMessage"]["message"]
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        if message is None:
            return None
        # JSON's "\\ud800" escapes decode to lone surrogates, which the Avro run record cannot carry
        return str(message).encode("utf-8", "replace").decode("utf-8")

    def to_json(self) -> Record:
        return {
            "run_id": self.run_id,
            "ids": self.event_ids,
            "ns": self.job_namespace,
            "name": self.job_name,
            "jk": self.job_key,
            "kind": self.job_kind,
            "kk": self.kind_key,
            "parent": self.parent_run_id,
            "pk": self.parent_key,
            "t0": self.started_at,
            "st": self.status,
            "sk": self.status_key,
            "seid": self.status_event_id,
            "stt": self.status_time,
            "facets": self.facets,
            "in": self.inputs,
            "out": self.outputs,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunState:
        return cls(
            run_id=d["run_id"],
            event_ids=list(d["ids"]),
            job_namespace=d["ns"],
            job_name=d["name"],
            job_key=list(d["jk"]),
            job_kind=d["kind"],
            kind_key=list(d["kk"]),
            parent_run_id=d["parent"],
            parent_key=list(d["pk"]),
            started_at=d["t0"],
            status=d["st"],
            status_key=list(d["sk"]),
            status_event_id=d["seid"],
            status_time=d["stt"],
            facets=d["facets"],
            inputs={k: list(v) for k, v in d["in"].items()},
            outputs={k: list(v) for k, v in d["out"].items()},
        )


def _merge_artifacts(into: dict[str, Artifact], refs: Iterable[Mapping[str, Any]], t: int, eid: str) -> None:
    for ref in refs:
        nid = node_id(ref["kind"], ref["namespace"], ref["name"])
        version = ref.get("version")
        new: Artifact = [ref["kind"], ref["namespace"], ref["name"], version, ref.get("facets")]
        new += [t, eid, version is not None]
        old = into.get(nid)
        if old is None or (new[7], new[5], new[6]) > (old[7], old[5], old[6]):
            into[nid] = new


def merge(state: RunState | None, event: Mapping[str, Any]) -> tuple[RunState, bool]:
    """`state` with `event` merged in (a new state when `state` is None); second item False when the
    event was already merged (a duplicate or replay), in which case the state is returned unchanged."""
    eid: str = event["event_id"]
    if state is None:
        state = RunState(run_id=event["run_id"], started_at=event["event_time"])
    elif eid in state.event_ids:
        return state, False
    t: int = event["event_time"]
    state.event_ids.append(eid)
    state.event_ids.sort()
    if state.revision == 1 or t < state.started_at:
        state.started_at = t
    key = [t, eid]
    if not state.job_key or key > state.job_key:
        state.job_key = key
        state.job_namespace = event["job_namespace"]
        state.job_name = event["job_name"]
    kind = event.get("job_kind") or "OTHER"
    if kind != "OTHER" and (not state.kind_key or key > state.kind_key):
        state.kind_key = key
        state.job_kind = kind
    parent = event.get("parent_run_id")
    if parent and (not state.parent_key or key > state.parent_key):
        state.parent_key = key
        state.parent_run_id = parent
    skey = _status_key(event["event_type"], t, eid)
    if not state.status_key or skey > state.status_key:
        state.status_key = skey
        state.status = event["event_type"]
        state.status_event_id = eid
        state.status_time = t
        state.facets = event.get("facets") or "{}"
    _merge_artifacts(state.inputs, event.get("inputs", ()), t, eid)
    _merge_artifacts(state.outputs, event.get("outputs", ()), t, eid)
    return state, True


def expired(entries: Iterable[tuple[Any, Mapping[str, Any]]], now_ms: int, retention_ms: int, limit: int) -> list[Any]:
    """Run ids to forget: entries are in last-update order ("u", ms); stops at the first one still live."""
    cutoff = now_ms - retention_ms
    out: list[Any] = []
    for key, value in entries:
        if len(out) >= limit or value["u"] >= cutoff:
            break
        out.append(key)
    return out


def merge_all(events: Iterable[Mapping[str, Any]]) -> dict[str, RunState]:
    """Fold events into per-run states (tests, the simulator cross-check, the graph benchmark)."""
    states: dict[str, RunState] = {}
    for event in events:
        states[event["run_id"]] = merge(states.get(event["run_id"]), event)[0]
    return states


# ---- edge types (the table in docs/lineage-model.md) -----------------------------------------------

_ANY = None
# (job kinds, input kinds, output kinds, edge type); None matches any. First match wins.
RULES: tuple[tuple[frozenset[str] | None, frozenset[str] | None, frozenset[str] | None, str], ...] = tuple(
    (
        frozenset(j.split(",")) if j != "*" else _ANY,
        frozenset(i.split(",")) if i != "*" else _ANY,
        frozenset(o.split(",")) if o != "*" else _ANY,
        t,
    )
    for j, i, o, t in (
        ("TRAIN", "*", "MODEL", "TRAINED_ON"),
        ("EVALUATE", "*", "EVALUATION", "EVALUATED_ON"),
        ("DEPLOY,GENERATE", "PROMPT", "*", "PROMPTED_WITH"),
        ("DEPLOY,GENERATE", "VECTOR_INDEX,CHUNK,DOCUMENT", "*", "RETRIEVED_FROM"),
        ("DEPLOY", "*", "DEPLOYMENT,ENDPOINT", "DEPLOYED_AS"),
        ("PREDICT", "*", "PREDICTION", "PREDICTED_BY"),
        ("GENERATE", "*", "*", "GENERATED_BY"),
        ("RETRIEVE", "*", "*", "RETRIEVED_FROM"),
        ("EMBED", "*", "EMBEDDING", "EMBEDDED_FROM"),
        ("INDEX", "*", "VECTOR_INDEX", "INDEXED_FROM"),
        ("*", "DOCUMENT", "CHUNK", "CHUNKED_FROM"),
        ("*", "*", "MODEL", "TRAINED_ON"),
        ("*", "*", "EVALUATION", "EVALUATED_ON"),
        ("*", "*", "DEPLOYMENT,ENDPOINT", "DEPLOYED_AS"),
        ("*", "*", "PREDICTION", "PREDICTED_BY"),
        ("*", "*", "EMBEDDING", "EMBEDDED_FROM"),
        ("*", "*", "VECTOR_INDEX", "INDEXED_FROM"),
        ("*", "*", "*", "DERIVED_FROM"),
    )
)


@cache
def edge_type(job_kind: str, input_kind: str, output_kind: str) -> str:
    """What the output is to the input, by the first matching rule of `RULES`."""
    for jobs, ins, outs, etype in RULES:
        if (
            (jobs is None or job_kind in jobs)
            and (ins is None or input_kind in ins)
            and (outs is None or output_kind in outs)
        ):
            return etype
    return "DERIVED_FROM"  # unreachable: the last rule matches everything


def facet(facets: str | None, name: str) -> Any:
    """One facet of a facets JSON object (None when absent or the JSON is off); cheap when absent."""
    if not facets or f'"{name}"' not in facets:
        return None
    try:
        return json.loads(facets).get(name)
    except (ValueError, AttributeError, RecursionError):  # odd or absurdly deep facets read as absent
        return None


def is_append(facets: str | None) -> bool:
    mode = facet(facets, "writeMode")
    return isinstance(mode, dict) and str(mode.get("mode", "")).upper() == "APPEND"


_INPUT_FIELD_KEYS = ("namespace", "name", "field")


def _transformations(src: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(type, subtypes) per transformation type of an inputField, subtypes comma-joined (DIRECT with no
    subtype when the facet lists none): one column edge per type."""
    found = src.get("transformations")
    items = [t for t in found if isinstance(t, dict)] if isinstance(found, list) else []
    by_type: dict[str, set[str]] = {}
    for t in items:
        ttype, subtype = str(t.get("type") or "DIRECT").upper(), str(t.get("subtype") or "").upper()
        if not is_unicode(ttype, subtype):
            continue
        subtypes = by_type.setdefault(ttype, set())
        if subtype:
            subtypes.add(subtype)
    if not by_type:
        return [("DIRECT", None)]
    return [(ttype, ",".join(sorted(subs)) or None) for ttype, subs in sorted(by_type.items())]


def column_pairs(output: Artifact, inputs: Mapping[str, Artifact]) -> list[tuple[str, str, str, str | None]]:
    """(src column id, dst column id, type, subtypes) from an output's columnLineage facet: one per
    inputField of each column, and one per entry of the facet's dataset-level `dataset` array (fields that
    affect the whole output: JOIN, FILTER, GROUP_BY ...), whose dst is the output as a whole (`<id>#`).
    Source datasets named only here (dbt seeds) are datasets too; odd entries are skipped."""
    lineage = facet(output[4], "columnLineage")
    if not isinstance(lineage, dict):
        return []
    kinds = {(a[1], a[2]): a[0] for a in inputs.values()}
    # an input named by another event under an alias (OpenLineage symlinks: schemas/openlineage.py) is
    # the same node: column sources may use the alias
    aliases: dict[tuple[str, str], tuple[str, str]] = {}
    for a in inputs.values():
        for alias in aliases_of(a[4]):
            aliases[alias] = (a[1], a[2])
    dst_node = node_id(output[0], output[1], output[2])
    targets: list[tuple[str, Any]] = []
    fields = lineage.get("fields")
    if isinstance(fields, dict):
        for column, spec in sorted(fields.items()):
            if isinstance(spec, dict) and isinstance(spec.get("inputFields"), list) and is_unicode(column):
                targets.extend((identity.column_id(dst_node, column), src) for src in spec["inputFields"])
    whole = lineage.get("dataset")
    if isinstance(whole, list):
        targets.extend((identity.column_id(dst_node, ""), src) for src in whole)
    out: list[tuple[str, str, str, str | None]] = []
    for dst_col, src in targets:
        if not isinstance(src, dict) or not all(isinstance(src.get(k), str) for k in _INPUT_FIELD_KEYS):
            continue
        if not is_unicode(src["namespace"], src["name"], src["field"]):
            continue
        ns, name = aliases.get((src["namespace"], src["name"]), (src["namespace"], src["name"]))
        src_col = node_id(kinds.get((ns, name), "DATASET"), ns, name, src["field"])
        out.extend((src_col, dst_col, f"COLUMN_{ttype}", subtypes) for ttype, subtypes in _transformations(src))
    return out


def edges(state: RunState, derived_at: int) -> list[Record]:
    """Every edge of the run (Avro `Edge` dict form): input x output pairs plus column edges (which need
    no listed input: a columnLineage facet may name sources the run does not list)."""
    if not state.outputs:
        return []
    common = {
        "run_id": state.run_id,
        "job": state.job,
        "event_id": state.status_event_id,
        "event_time": state.status_time,
        "derived_at": derived_at,
        "valid_from": state.started_at,
        "run_status": state.status,
        "revision": state.revision,
    }
    job_kind = state.job_kind
    out: list[Record] = []
    for dst, o in state.outputs.items():
        append = is_append(o[4])
        for src, i in state.inputs.items():
            if src == dst:
                continue  # an artifact rewritten in place is not its own upstream
            out.append(
                {
                    "src": src,
                    "dst": dst,
                    "edge_type": edge_type(job_kind, i[0], o[0]),
                    "src_version": i[3],
                    "dst_version": o[3],
                    **common,
                    "append": append,
                    "subtype": None,
                }
            )
        if o[4] and '"columnLineage"' in o[4]:
            for src_col, dst_col, ctype, subtype in column_pairs(o, state.inputs):
                out.append(
                    {
                        "src": src_col,
                        "dst": dst_col,
                        "edge_type": ctype,
                        "src_version": None,
                        "dst_version": o[3],
                        **common,
                        "append": append,
                        "subtype": subtype,
                    }
                )
    return out


def run_record(state: RunState, derived_at: int) -> Record:
    """The Avro `Run` dict form of the merged state."""

    def refs(arts: Mapping[str, Artifact]) -> list[Record]:
        return [
            {"kind": a[0], "namespace": a[1], "name": a[2], "version": a[3], "facets": a[4]}
            for _, a in sorted(arts.items())
        ]

    return {
        "run_id": state.run_id,
        "revision": state.revision,
        "job_namespace": state.job_namespace,
        "job_name": state.job_name,
        "job_kind": state.job_kind,
        "parent_run_id": state.parent_run_id,
        "status": state.status,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "error": state.error,
        "inputs": refs(state.inputs),
        "outputs": refs(state.outputs),
        "facets": state.facets,
        "updated_at": derived_at,
    }
