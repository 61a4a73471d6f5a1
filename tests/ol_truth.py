"""What a correct OpenLineage consumer holds after a stream of events, computed from the events and the
spec alone (never from Upriver's code), in the shape of tests/fixtures/compatibility/*/expected.json
(tests/fixtures/compatibility/expected_format.md). Used for events real producers emitted in the tests.

Spec rules applied: a run is every event with its runId; a terminal event (COMPLETE, FAIL, ABORT) beats
START/RUNNING/OTHER, the latest terminal one winning; inputs and outputs are unions over the run's events;
every (input, output) pair of a run is an edge; every inputFields entry of a columnLineage field is a
column edge per transformation (type and subtype), and the facet's `dataset` array entries affect the
whole output; a `symlinks` facet gives other names of the same dataset.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

Doc = dict[str, Any]
TERMINAL = ("COMPLETE", "FAIL", "ABORT")


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ds(d: Doc) -> Doc:
    return {"namespace": d["namespace"], "name": d["name"]}


def _key(d: Doc) -> tuple[str, str]:
    return d["namespace"], d["name"]


def _transformations(src: Doc) -> list[tuple[str | None, str | None]]:
    found = src.get("transformations") or []
    return [(t.get("type"), t.get("subtype")) for t in found] or [(None, None)]


def expected(events: list[Doc]) -> Doc:
    datasets: dict[tuple[str, str], Doc] = {}
    column_sources: dict[tuple[str, str], Doc] = {}
    symlinks: dict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(set)
    jobs: dict[tuple[str, str], Doc] = {}
    runs: dict[str, Doc] = {}
    column_edges: set[tuple[Any, ...]] = set()
    dataset_column_edges: set[tuple[Any, ...]] = set()
    for ev in events:
        job = ev.get("job")
        run = ev.get("run")
        if isinstance(ev.get("dataset"), dict) and run is None and job is None:
            datasets[_key(ev["dataset"])] = _ds(ev["dataset"])
            continue
        jobs[_key(job)] = _ds(job)
        sides = {"inputs": ev.get("inputs") or [], "outputs": ev.get("outputs") or []}
        for side in sides.values():
            for d in side:
                datasets[_key(d)] = _ds(d)
                for ident in ((d.get("facets") or {}).get("symlinks") or {}).get("identifiers") or []:
                    symlinks[_key(d)].add((ident["namespace"], ident["name"], ident.get("type", "")))
        for out in sides["outputs"]:
            lineage = (out.get("facets") or {}).get("columnLineage") or {}
            for field, spec in (lineage.get("fields") or {}).items():
                for src in spec.get("inputFields") or []:
                    if _key(src) not in datasets:
                        column_sources[_key(src)] = _ds(src)
                    for ttype, sub in _transformations(src):
                        column_edges.add((src["namespace"], src["name"], src["field"], out["namespace"], out["name"],
                                          field, ttype, sub))  # fmt: skip
            for src in lineage.get("dataset") or []:
                if _key(src) not in datasets:
                    column_sources[_key(src)] = _ds(src)
                for ttype, sub in _transformations(src):
                    dataset_column_edges.add((src["namespace"], src["name"], src["field"], out["namespace"],
                                              out["name"], ttype, sub))  # fmt: skip
        if run is None:
            continue
        state = runs.setdefault(
            run["runId"],
            {"run_id": run["runId"], "job": _ds(job), "inputs": {}, "outputs": {}, "_key": None, "error_message": None,
             "parent_run_id": None, "final_state": None},
        )  # fmt: skip
        etype = ev.get("eventType") or "OTHER"
        key = (1, _time(ev["eventTime"])) if etype in TERMINAL else (0, _time(ev["eventTime"]))
        if state["_key"] is None or key > state["_key"]:
            state["_key"] = key
            state["final_state"] = etype
            error = (run.get("facets") or {}).get("errorMessage")
            state["error_message"] = error.get("message") if isinstance(error, dict) else None
        parent = ((run.get("facets") or {}).get("parent") or {}).get("run") or {}
        if parent.get("runId"):
            state["parent_run_id"] = parent["runId"]
        for side, items in sides.items():
            for d in items:
                state[side][_key(d)] = _ds(d)
    edges = []
    for state in runs.values():
        for i in state["inputs"].values():
            for o in state["outputs"].values():
                if _key(i) != _key(o):
                    edges.append({"src": i, "dst": o, "job": state["job"], "run_id": state["run_id"]})
    for key in datasets:
        column_sources.pop(key, None)

    def fields(t: tuple[Any, ...], with_field: bool) -> Doc:
        return {"namespace": t[0], "name": t[1], **({"field": t[2]} if with_field else {})}

    return {
        "datasets": sorted(datasets.values(), key=_key),
        "column_only_datasets": sorted(column_sources.values(), key=_key),
        "symlinks": [
            {
                **_ds({"namespace": k[0], "name": k[1]}),
                "aliases": [{"namespace": a, "name": b, "type": c} for a, b, c in sorted(v)],
            }
            for k, v in sorted(symlinks.items())
        ],
        "jobs": sorted(jobs.values(), key=_key),
        "runs": [
            {
                **{k: v for k, v in r.items() if k != "_key"},
                "inputs": list(r["inputs"].values()),
                "outputs": list(r["outputs"].values()),
            }
            for r in runs.values()
        ],
        "edges": edges,
        "column_edges": [
            {
                "src": fields(t, True),
                "dst": {"namespace": t[3], "name": t[4], "field": t[5]},
                "type": t[6],
                "subtype": t[7],
            }
            for t in sorted(column_edges, key=str)
        ],
        "dataset_column_edges": [
            {"src": fields(t, True), "dst": {"namespace": t[3], "name": t[4]}, "type": t[5], "subtype": t[6]}
            for t in sorted(dataset_column_edges, key=str)
        ],
    }
