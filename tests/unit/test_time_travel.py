"""The read side over runs derived by processors.lineage.runs and stored in embedded ClickHouse: time travel
(supersession, failed runs, append, retirement), revisions arriving in any order, impact, path,
provenance, node attributes and column lineage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from processors.lineage import runs
from sinks.rows import EDGES, RUNS, edge_row, run_row
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader, NodeNotFound, parse_time
from upriver.readside.queries import RAW_LEVEL_ROWS

A, B, C, D = (f"dataset:wh/{x}" for x in "abcd")
M = "model:registry/churn"
DEP = "deployment:serving/churn-api"
E1, E2, IDX = "embedding:vec/e1", "embedding:vec/e2", "vector_index:vec/idx"


def _ref(node: str, version: str | None = None, facets: dict[str, Any] | None = None) -> dict[str, Any]:
    kind, rest = node.split(":", 1)
    ns, name = rest.split("/", 1)
    return {
        "kind": kind.upper(),
        "namespace": ns,
        "name": name,
        "version": version,
        "facets": json.dumps(facets, sort_keys=True) if facets else None,
    }


_n = 0


def _ev(
    run: str,
    etype: str,
    t: int,
    ins: list[Any] = (),
    outs: list[Any] = (),
    job: str = "train",
    **kw: Any,  # type: ignore[assignment]
) -> dict[str, Any]:
    global _n
    _n += 1
    return {
        "event_id": f"{run}-{_n}",
        "event_time": t,
        "event_type": etype,
        "job_namespace": "pipelines",
        "job_name": job,
        "job_kind": kw.get("kind", "TRAIN"),
        "run_id": run,
        "parent_run_id": None,
        "inputs": list(ins),
        "outputs": list(outs),
        "facets": kw.get("facets", "{}"),
    }


OWNED = {"ownership": {"owners": [{"name": "team:growth", "type": "TEAM"}]}}
PII = {"tags": {"tags": [{"key": "PII", "value": "true", "field": "email"}]}, "schema": {"fields": [{"name": "email"}]}}
COLUMNS = {
    "columnLineage": {"fields": {"score_input": {"inputFields": [{"namespace": "wh", "name": "a", "field": "email"}]}}}
}
APPEND = {"writeMode": {"mode": "APPEND"}}
EVENTS = [
    # r1 trains v1 on a, b; r2 (newer) on a, c; r3 fails reading d. Deployment of v2.
    _ev("r1", "START", 100, [_ref(A, "d1", PII), _ref(B, "d1")]),
    _ev("r1", "COMPLETE", 110, outs=[_ref(M, "v1", OWNED)]),
    _ev("r2", "COMPLETE", 210, [_ref(A, "d2"), _ref(C, "d2")], [_ref(M, "v2", {**OWNED, **COLUMNS})]),
    _ev("r2", "START", 200, [_ref(A, "d2")]),
    _ev("r3", "START", 300, [_ref(D)]),
    _ev("r3", "RUNNING", 305, outs=[_ref(M, "v3")]),
    _ev("r3", "FAIL", 310, facets=json.dumps({"errorMessage": {"message": "OOM"}})),
    _ev("d1", "DEPLOY", 220, [_ref(M, "v2")], [_ref(DEP, "v2")], job="deploy", kind="DEPLOY"),
    # append-mode index: both embeddings stay upstream of the index
    _ev("i1", "COMPLETE", 120, [_ref(E1)], [_ref(IDX, "1", APPEND)], job="index", kind="INDEX"),
    _ev("i2", "COMPLETE", 230, [_ref(E2)], [_ref(IDX, "2", APPEND)], job="index", kind="INDEX"),
    # c is retired at 400
    _ev("x1", "RETIRE", 400, [_ref(C)], job="retire", kind="OTHER"),
]


@pytest.fixture(params=[RAW_LEVEL_ROWS, 0], ids=["judged-in-python", "judged-in-clickhouse"])
def reader(ch_client: Client, ch_database: str, request: pytest.FixtureRequest) -> LineageReader:
    """Both ways a walk level is judged: its stored rows in Python (small levels) and in SQL (large ones)."""
    load(ClickHouseWriter(ch_client, ch_database), EVENTS, derived_at=1_000)
    return LineageReader(ch_client, ch_database, raw_rows=request.param)


def _up(reader: LineageReader, node: str, as_of: int | None = None) -> set[str]:
    return set(reader.upstream(node, depth=5, as_of=as_of).nodes) - {node}


def test_retrain_supersedes_the_old_training_set(reader: LineageReader) -> None:
    assert _up(reader, M, as_of=150) == {A, B}
    assert _up(reader, M, as_of=205) == {A, C}
    assert _up(reader, M, as_of=50) == set()


def test_failed_run_is_stored_but_never_valid_and_supersedes_nothing(reader: LineageReader) -> None:
    assert D not in _up(reader, M, as_of=350)
    assert _up(reader, M, as_of=350) == {A, C}


def test_retirement_ends_edges_touching_the_artifact(reader: LineageReader) -> None:
    assert _up(reader, M, as_of=399) == {A, C}
    assert _up(reader, M) == {A}
    assert reader.node(C)["retired"] is True


def test_append_writes_are_never_superseded(reader: LineageReader) -> None:
    assert _up(reader, IDX) == {E1, E2}
    assert _up(reader, IDX, as_of=150) == {E1}


def test_downstream_respects_supersession(reader: LineageReader) -> None:
    # b fed only r1: after r2 it is no longer upstream of the model
    assert set(reader.downstream(B, as_of=150).nodes) == {B, M}
    assert set(reader.downstream(B).nodes) == {B}
    assert set(reader.downstream(A).nodes) == {A, M, DEP}


def test_impact_groups_by_kind_and_caps(reader: LineageReader) -> None:
    impact = reader.impact(A)
    doc = impact.to_json()
    assert doc["models"] == [M] and doc["deployments"] == [DEP] and doc["partial"] is False
    assert impact.to_csv().splitlines() == ["node_id,kind,level", f"{M},model,1", f"{DEP},deployment,2"]
    capped = reader.impact(A, max_nodes=1)
    assert capped.partial is True and len(capped.levels) <= 2


def test_path_finds_the_chain_either_way(reader: LineageReader) -> None:
    chain = [(A, M, "TRAINED_ON"), (M, DEP, "DEPLOYED_AS")]
    assert reader.path(A, DEP) == chain
    assert reader.path(DEP, A) == chain
    assert reader.path(B, DEP) is None
    assert reader.path(B, DEP, as_of=250) is None  # b -> m ended at 200, before the deployment at 220
    with pytest.raises(NodeNotFound):
        reader.path(A, "model:nowhere/x")


def test_provenance_by_version_and_as_of(reader: LineageReader) -> None:
    latest = reader.provenance(M)
    assert latest.run_id == "r2" and latest.version == "v2"
    assert dict(latest.inputs) == {A: "d2", C: "d2"}
    old = reader.provenance(M, "v1")
    assert old.run_id == "r1" and dict(old.inputs) == {A: "d1", B: "d1"}
    assert reader.provenance(M, as_of=150).run_id == "r1"
    with pytest.raises(NodeNotFound):
        reader.provenance(M, "v3")  # only the failed run wrote v3
    assert [v["version"] for v in reader.versions(M)] == ["v1", "v2", "v3"]


def test_node_attributes(reader: LineageReader) -> None:
    m = reader.node(M)
    assert m["kind"] == "MODEL" and m["latest_version"] == "v3"  # the failed run still named v3
    assert m["owner"] == "team:growth" and m["producing_job"] == "job:pipelines/train"
    a = reader.node(A)
    assert a["tags"] == ["PII:email"] and a["fields"] == ["email"] and a["producing_job"] is None
    with pytest.raises(NodeNotFound):
        reader.node("dataset:nowhere/x")
    assert reader.resolve("churn") == M
    assert reader.search("churn")[0] == M


def test_column_lineage_walk(reader: LineageReader) -> None:
    g = reader.upstream(f"{M}#score_input")
    assert set(g.nodes) == {f"{M}#score_input", f"{A}#email"}


def test_revisions_in_any_insert_order(ch_client: Client, ch_database: str) -> None:
    """The final revision decides even when an older revision is inserted after it (no merge)."""
    writer = ClickHouseWriter(ch_client, ch_database)
    first, _ = runs.merge(None, _ev("rx", "RUNNING", 10, [_ref(A)], [_ref(M)]))
    rows_v1 = [edge_row(e, 0, 1) for e in runs.edges(first, 0)]
    snapshot = runs.RunState.from_json(first.to_json())
    final, _ = runs.merge(snapshot, _ev("rx", "FAIL", 20))
    rows_v2 = [edge_row(e, 0, 2) for e in runs.edges(final, 0)]
    writer.insert("runs", [run_row(runs.run_record(final, 0), 0, 3)], RUNS.columns, RUNS.types, "r")
    writer.insert("edges", rows_v2, EDGES.columns, EDGES.types, "v2")
    writer.insert("edges", rows_v1, EDGES.columns, EDGES.types, "v1")
    for raw_rows in (RAW_LEVEL_ROWS, 0):
        reader = LineageReader(ch_client, ch_database, raw_rows=raw_rows)
        assert set(reader.upstream(M).nodes) == {M}


def test_parse_time() -> None:
    assert parse_time("2026-01-01") == 1_767_225_600_000
    assert parse_time("2026-01-01T00:00:01Z") == 1_767_225_601_000
    assert parse_time("1767225600000") == 1_767_225_600_000
    assert parse_time(None) is None
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


# ---- the CLI over the same data (no stack running: it reads ClickHouse directly) -------------------


@pytest.fixture
def cli(reader: LineageReader, chdb_url: str, ch_database: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from upriver.cli.main import main

    monkeypatch.setenv("CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("CLICKHOUSE_DATABASE", ch_database)
    monkeypatch.setenv("UPRIVER_HOME", str(tmp_path))  # no running stack there
    return main


def test_cli_as_of_impact_csv_path_provenance_column(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["lineage", "upstream", M, "--as-of", "150", "--json"]) == 0
    assert {n["id"] for n in json.loads(capsys.readouterr().out)["nodes"]} == {M, A, B}
    assert cli(["lineage", "impact", "a", "--csv"]) == 0  # a unique name resolves to its node
    assert capsys.readouterr().out.splitlines()[1:] == [f"{M},model,1", f"{DEP},deployment,2"]
    assert cli(["lineage", "path", A, DEP]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{A} -[TRAINED_ON]-> {M}", f"{M} -[DEPLOYED_AS]-> {DEP}"]
    assert cli(["lineage", "provenance", M, "--version", "v1"]) == 0
    out = capsys.readouterr().out
    assert "run r1" in out and f"{B}@d1" in out
    assert cli(["lineage", "upstream", "--column", f"{M}.score_input"]) == 0
    assert f"{A}#email" in capsys.readouterr().out
    assert cli(["lineage", "downstream", A, "--kind", "deployment"]) == 0
    assert capsys.readouterr().out.split() == ["0", A, "2", DEP]


def test_cli_errors_are_clear(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["lineage", "upstream", "model:nowhere/x"]) == 1
    assert "no lineage for node 'model:nowhere/x'" in capsys.readouterr().err
    assert cli(["lineage", "upstream", M, "--as-of", "last week"]) == 1
    assert "ISO 8601" in capsys.readouterr().err
    assert cli(["lineage", "path", A]) == 1


def test_walk_from_an_id_a_name_or_nothing(reader: LineageReader, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's walks start from what a user typed: an id as sent, else whatever `resolve` makes of it."""
    by_id = reader.walk_from(M, lambda n: reader.upstream(n, depth=5))
    assert by_id == reader.upstream(reader.resolve(M), depth=5) and by_id.root == M
    by_name = reader.walk_from("registry/churn", lambda n: reader.upstream(n, depth=5))
    assert by_name == by_id
    with pytest.raises(NodeNotFound, match="wh/nope"):
        reader.walk_from("dataset:wh/nope", lambda n: reader.upstream(n))
    # a known id goes straight to the walk, without resolve's lookups; an unknown one is resolved, then walked
    resolved: list[str] = []
    real = reader.resolve
    monkeypatch.setattr(reader, "resolve", lambda text: resolved.append(text) or real(text))
    reader.walk_from(A, lambda n: reader.downstream(n))
    assert resolved == []
    with pytest.raises(NodeNotFound):
        reader.walk_from("dataset:wh/nope", lambda n: reader.downstream(n))
    assert resolved == ["dataset:wh/nope"]
