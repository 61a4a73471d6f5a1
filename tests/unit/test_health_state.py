"""The health state's persisted form (processors/health/persisted.py): pinned per format version by a
golden file, every older version still readable, and the untagged form written before versioning
(tests/fixtures/health/state.legacy.json, captured from that engine) recovered exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from processors.health import persisted
from processors.health.config import HealthConfig
from processors.health.engine import HealthEngine
from processors.health.state import (
    Artifact,
    Done,
    DriftMark,
    HealthState,
    MissingIO,
    Node,
    OpenAlert,
    PendingRun,
    Serving,
    Write,
    Writer,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "health"
H = 3_600_000


def fixed_state() -> HealthState:
    """A state with every record and every field set (none left at its default)."""
    s = HealthState(settled=6_000, watermark=9_500)
    s.nodes["model:reg/m"] = Node(
        kind="MODEL", namespace="reg", first_seen=50, updates=[50, 900], last_touch=950, declared_sla=600_000,
        produced=True, retired_at=None, versions={"v1": 50, "v2": 900},
        writers={"job:p/train": Writer(40, "t1", ["feature:feast/f"], "v1")}, appends={"dataset:wh/log": 25},
        latest=Write(40, "t1", "v1"), readers=["deployment:serving/api"],
        trained={"v1": [("feature:feast/f", "d1")], "v2": []}, serving=None, served_by=["deployment:serving/api"],
        drift=DriftMark(100, "feature:feast/f", ["feature:feast/f", "model:reg/m"]), signals=[100, 300],
    )  # fmt: skip
    s.nodes["deployment:serving/api"] = Node(
        kind="DEPLOYMENT", namespace="serving", first_seen=70, updates=[70], last_touch=70, retired_at=1_000,
        serving=Serving("model:reg/m", "v1", 70), latest=Write(60, "d1", None),
    )  # fmt: skip
    sla = '{"freshness": {"slaSeconds": 600}}'
    s.pending["p2"] = PendingRun(
        revision=2, job="job:p/later", kind="TRANSFORM", status="COMPLETE", started_at=9_000, ended_at=9_500,
        inputs=[Artifact("DATASET", "wh", "raw", "d1", sla)], outputs=[Artifact("DATASET", "wh", "later", None, None)],
        facets='{"k": 1}', started=True,
    )  # fmt: skip
    s.alerts["STALE_MODEL|deployment:serving/api"] = OpenAlert(
        "921340c39fe80c83232e", "STALE_MODEL", "stale", "deployment:serving/api", "serving", "warning",
        "serves model:reg/m@v1, trained on data that has newer versions", ["model:reg/m", "deployment:serving/api"],
        190,
    )  # fmt: skip
    s.open_runs["job:p/slow"] = {"o1": 180, "o2": 185}
    s.missing_io["job:q/x"] = MissingIO(170, ["dataset:wh/y"])
    s.missing_io["job:p/slow"] = MissingIO(160, ["dataset:wh/z", "model:reg/n"])
    s.streaming.add("job:flink/stream")
    s.done["d1"] = Done(70, 3)
    return s


def _keys(s: HealthState) -> list[str]:
    return sorted(
        [*(f"n:{k}" for k in s.nodes), *(f"r:{k}" for k in s.pending), *(f"a:{k}" for k in s.alerts),
         *(f"j:{k}" for k in {*s.open_runs, *s.missing_io}), *(f"d:{k}" for k in s.done),
         *(f"s:{k}" for k in s.streaming), "meta"]
    )  # fmt: skip


def dump(items: list[tuple[str, Any]]) -> str:
    """The golden files' text: one [key, value] per line, sorted by key (write a new version's with it)."""
    return "[\n" + ",\n".join(json.dumps([k, v], sort_keys=True) for k, v in sorted(items)) + "\n]\n"


def _read(path: Path) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in json.loads(path.read_text())]


def _restored(items: list[tuple[str, Any]]) -> HealthState:
    state = HealthState()
    persisted.load(state, items)
    state.dirty.clear()
    return state


def test_the_persisted_form_is_the_golden_file_of_its_version() -> None:
    """Changing what is written without a new FORMAT_VERSION (and its golden file) fails here."""
    state = fixed_state()
    exported = [(k, json.loads(json.dumps(persisted.export(state, k)))) for k in _keys(state)]
    assert all(v["v"] == persisted.FORMAT_VERSION for _, v in exported)
    golden = FIXTURES / f"state.v{persisted.FORMAT_VERSION}.json"
    assert dump(exported) == golden.read_text()


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("state.v*.json")), ids=lambda p: p.name)
def test_every_format_version_restores_the_state(path: Path) -> None:
    assert int(path.name.split(".")[1][1:]) <= persisted.FORMAT_VERSION
    assert _restored(_read(path)) == fixed_state()


def test_a_value_from_a_newer_version_is_refused() -> None:
    with pytest.raises(ValueError, match="format 2"):
        _restored([("meta", {"v": 2, "meta": [1, 2]})])


def test_deleted_and_unknown_keys_are_skipped() -> None:
    golden = _read(FIXTURES / f"state.v{persisted.FORMAT_VERSION}.json")
    items = [*golden, ("n:gone", None), ("x:unknown", {"v": 1})]
    assert _restored(items) == fixed_state()
    assert persisted.export(fixed_state(), "n:gone") is None
    with pytest.raises(KeyError):
        persisted.export(fixed_state(), "x:unknown")


# ---- the form written before versioning ------------------------------------------------------------


def _art(kind: str, ns: str, name: str, version: str | None = None, facets: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "namespace": ns, "name": name, "version": version, "facets": facets}


def _run(rid: str, job: str, status: str, s: int, e: int | None, inputs: Any = (), outputs: Any = (),
         facets: str = "{}", rev: int = 2) -> dict[str, Any]:  # fmt: skip
    ns, name = job.split("/")
    return {"run_id": rid, "revision": rev, "job_namespace": ns, "job_name": name, "job_kind": "OTHER",
            "status": status, "started_at": s, "ended_at": e, "inputs": list(inputs), "outputs": list(outputs),
            "facets": facets}  # fmt: skip


SLA = '{"freshness": {"slaSeconds": 600}}'
RAW = _art("DATASET", "wh", "raw", "d1", SLA)
FEAT = _art("FEATURE", "feast", "f", "d1")
LEGACY_CONFIG = HealthConfig(lateness_ms=0, run_timeout_ms=H, upstream_grace_ms=1000, model_lag_ms=100)


def legacy_scenario() -> HealthEngine:
    """The workload state.legacy.json was captured from (with the engine before versioning, then every
    dirty key's exported value, deletions left out): every kind of entry, every node field set."""
    e = HealthEngine(LEGACY_CONFIG)
    model, deployment = _art("MODEL", "reg", "m", "v1"), _art("DEPLOYMENT", "serving", "api", "v1")
    log = _art("DATASET", "wh", "log", None, '{"writeMode": {"mode": "APPEND"}}')
    streaming = '{"jobFacets": {"jobType": {"processingType": "STREAMING"}}}'
    for r in (
        _run("i1", "p/ingest", "COMPLETE", 0, 10, [], [RAW]),
        _run("f1", "p/feat", "COMPLETE", 20, 30, [RAW], [FEAT]),
        _run("l1", "p/log", "COMPLETE", 25, 35, [RAW], [log]),
        _run("t1", "p/train", "COMPLETE", 40, 50, [FEAT], [model]),
        _run("d1", "p/deploy", "COMPLETE", 60, 70, [model], [deployment]),
        _run("f2", "p/feat", "COMPLETE", 80, 90, [RAW], [_art("FEATURE", "feast", "f", "d2")]),
        _run("s1", "signals/drift", "DRIFT", 100, 100, [FEAT], facets='{"drift": {"drifted": true}}'),
        _run("u1", "p/upload", "COMPLETE", 110, 120, [], [_art("MODEL", "reg", "orphan", "v1")]),
        _run("g1", "p/junk", "COMPLETE", 130, 140, [], [_art("DATASET", "wh", "gone")]),
        _run("x1", "signals/retire", "RETIRE", 150, 150, [_art("DATASET", "wh", "gone")]),
        _run("q1", "q/x", "COMPLETE", 160, 170, [RAW], [], facets='{"expectedIO": {"inputs": ["dataset:wh/y"]}}'),
        _run("o1", "p/slow", "START", 180, None, rev=1),
        _run("st1", "flink/stream", "START", 190, None, facets=streaming, rev=1),
    ):  # fmt: skip
        e.add_run(r)
    e.advance(5000)
    e.sweep()
    e.add_run(_run("p1", "p/later", "START", 9000, None, [RAW], rev=1))  # pending, not yet settled
    e.add_run(_run("p2", "p/later2", "COMPLETE", 9000, 9500, [RAW], [_art("DATASET", "wh", "later")]))
    e.advance(6000)
    return e


def _legacy() -> HealthEngine:
    e = HealthEngine(LEGACY_CONFIG)
    e.load(_read(FIXTURES / "state.legacy.json"))
    return e


def test_state_written_before_versioning_is_read_exactly() -> None:
    e = _legacy()
    assert e.take_dirty() == set()  # read as is; each entry is rewritten in the current form when it changes
    reference = legacy_scenario()
    assert e.state.nodes == reference.state.nodes
    for name in ("pending", "alerts", "open_runs", "missing_io", "streaming", "done", "settled", "watermark"):
        assert getattr(e.state, name) == getattr(reference.state, name), name


def test_state_written_before_versioning_means_what_its_runs_said() -> None:
    e = _legacy()
    raw, api, model = e.nodes["dataset:wh/raw"], e.nodes["deployment:serving/api"], e.nodes["model:reg/m"]
    assert raw.declared_sla == 600_000 and raw.versions == {"d1": 10} and raw.last_touch == 170
    assert raw.writers == {"job:p/ingest": Writer(0, "i1", [], "d1")} and raw.latest == Write(0, "i1", "d1")
    assert e.nodes["dataset:wh/log"].appends == {"dataset:wh/raw": 25}
    assert e.nodes["dataset:wh/gone"].retired_at == 150
    assert model.trained == {"v1": [("feature:feast/f", "d1")]} and model.served_by == ["deployment:serving/api"]
    assert api.serving == Serving("model:reg/m", "v1", 70)
    assert api.drift == DriftMark(100, "feature:feast/f", ["feature:feast/f", "model:reg/m", "deployment:serving/api"])
    assert e.nodes["feature:feast/f"].signals == [100]
    assert e.open_runs == {"job:p/slow": {"o1": 180}} and e.missing_io == {"job:q/x": MissingIO(170, ["dataset:wh/y"])}
    assert e.streaming == {"job:flink/stream"} and e.done["d1"] == Done(70, 2)
    assert (e.settled, e.watermark) == (6000, 9500)
    assert e.pending["p2"].outputs == [Artifact("DATASET", "wh", "later", None, None)] and not e.pending["p2"].started
    assert sorted(e.alerts) == [
        "DRIFT_IMPACT|deployment:serving/api", "DRIFT_IMPACT|model:reg/m", "MISSING_IO|job:q/x",
        "MISSING_UPSTREAM|model:reg/orphan", "STALE_MODEL|deployment:serving/api",
    ]  # fmt: skip
    assert e.alerts["MISSING_UPSTREAM|model:reg/orphan"].opened_at == 110 + 10 + 1000  # first seen + grace


def test_an_upgraded_worker_goes_on_as_if_it_had_not_stopped() -> None:
    """Recovered from the old form, the engine applies the pending runs and later facts like the engine
    that never stopped, and writes what changed in the current form (a table then mixes both)."""
    upgraded, reference = _legacy(), legacy_scenario()
    reference.take()
    reference.take_dirty()
    for e in (upgraded, reference):
        e.add_run(_run("t2", "p/train", "COMPLETE", 9600, 9700, [FEAT], [_art("MODEL", "reg", "m", "v2")]))
        e.advance(10_000 + H)
        e.sweep()
    assert upgraded.take() == reference.take()
    dirty = upgraded.take_dirty()
    assert dirty == reference.take_dirty() and "n:model:reg/m" in dirty
    table = dict(_read(FIXTURES / "state.legacy.json"))
    table.update((k, json.loads(json.dumps(upgraded.export(k)))) for k in dirty)
    assert table["n:model:reg/m"]["v"] == persisted.FORMAT_VERSION and isinstance(table["n:dataset:wh/gone"], list)
    again = HealthEngine(LEGACY_CONFIG)
    again.load((k, v) for k, v in table.items() if v is not None)
    assert again.state.nodes == upgraded.state.nodes and again.state.alerts == upgraded.state.alerts
    assert (again.state.pending, again.state.done) == (upgraded.state.pending, upgraded.state.done)


def test_an_old_node_missing_trailing_fields_takes_their_defaults() -> None:
    """A node row of 17 fields (before `signals` was kept) is read with no signals."""
    row = json.loads((FIXTURES / "state.legacy.json").read_text())
    [value] = [v for k, v in row if k == "n:feature:feast/f"]
    state = _restored([("n:feature:feast/f", value[:-1])])
    assert state.nodes["feature:feast/f"].signals == []
    assert state.nodes["feature:feast/f"].updates == [30, 90]


def test_runs_awaiting_their_facts_share_one_copy_of_each_artifact_string() -> None:
    # two Run records decoded apart (as from the runs topic: distinct string objects of equal text)
    records = [json.loads(json.dumps(_run(f"r{i}", "etl/load", "COMPLETE", 10, 20, [RAW], [FEAT]))) for i in (1, 2)]
    assert records[0]["inputs"][0]["name"] is not records[1]["inputs"][0]["name"]
    engine = HealthEngine(HealthConfig(lateness_ms=10**9))  # nothing settles: both stay pending
    for record in records:
        engine.add_run(record)
    one, two = engine.pending["r1"], engine.pending["r2"]
    for a, b in ((one.inputs[0], two.inputs[0]), (one.outputs[0], two.outputs[0])):
        assert (a.kind, a.namespace, a.name, a.version, a.facets) == (b.kind, b.namespace, b.name, b.version, b.facets)
        assert a.namespace is b.namespace and a.name is b.name and a.version is b.version
    assert one.inputs[0].facets is two.inputs[0].facets == SLA and one.job is two.job
    # and so do the runs restored from the persisted form
    restored = _restored([(k, engine.export(k)) for k in sorted(engine.take_dirty())])
    assert restored.pending["r1"].inputs[0].name is restored.pending["r2"].inputs[0].name is one.inputs[0].name
