"""Marquez's `GET /api/v1/column-lineage?nodeId=&depth=&withDownstream=` (upriver/http/marquez/columns.py) over
embedded ClickHouse, loaded with the OpenLineage compatibility-tests scenarios (CLL, airflow, two Spark ones) and a
few events made here (names holding '#', ':', '/', spaces and non-ASCII; a pair written again by a later, failed run
with another transformation). Every expected graph comes from tests/marquez_columns_truth.py, a model of Marquez's
storage and recursive query written from its source; versions are checked against the dataset-versions and run
routes (the ids the UI follows); every answer is validated against Marquez's OpenAPI schemas (tests/marquez_spec.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from clickhouse_connect.driver.client import Client
from compat_support import scenario_events
from marquez_columns_truth import Col, Truth, fields_of, job_start, latest, lineage, truth
from marquez_spec import Contract, spec_text

from schemas.identity import node_id
from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.http.api import ApiError
from upriver.http.routes import handle
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader

SCENARIOS = ("CLL", "airflow", "spark_dataproc_simple_producer_test_complete", "spark_dataproc_bigquery_shakespare")
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/client/python"
NS, IN, OUT, FINAL = "s3://lake#1", "raw/a:b #x", "out/ü#名", "final table"
JOB_NS, JOB = "sched: odd", "cl#job"
CONTRACT = Contract()
VALIDATE = spec_text() is not None  # without a Marquez checkout (MARQUEZ_REPO), the answers are not validated


def _event(run: str, etype: str, t: int, job: str, ins: list[Any], outs: list[Any]) -> dict[str, Any]:
    return {"eventType": etype, "eventTime": f"2026-02-01T00:00:{t:02d}Z", "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run}, "job": {"namespace": JOB_NS, "name": job},
            "inputs": ins, "outputs": outs}  # fmt: skip


def _ds(name: str, schema: dict[str, str], lineage: dict[str, tuple[str, str, str, str]] | None = None) -> Any:
    facets: dict[str, Any] = {"schema": {"fields": [{"name": k, "type": v} for k, v in schema.items()]}}
    if lineage:
        facets["columnLineage"] = {"fields": {
            col: {"inputFields": [{"namespace": NS, "name": src, "field": f}], "transformationDescription": desc,
                  "transformationType": kind} for col, (src, f, desc, kind) in lineage.items()}}  # fmt: skip
    return {"namespace": NS, "name": name, "facets": facets}


RUN1, RUN2, RUN3 = (f"01900000-0000-7000-8000-00000000000{i}" for i in (1, 2, 3))
SOURCE = _ds(IN, {"id": "INT", "v": "STRING"})
FIRST = {"id": (IN, "id", "copy", "IDENTITY"), "v2": (IN, "v", "old", "T1")}
MADE = [
    _event(RUN1, "START", 1, JOB, [SOURCE], [_ds(OUT, {"id": "BIGINT", "v2": "STRING"}, FIRST)]),
    _event(RUN1, "COMPLETE", 2, JOB, [SOURCE], [_ds(OUT, {"id": "BIGINT", "v2": "STRING"}, FIRST)]),
    _event(RUN2, "START", 3, JOB, [SOURCE], [_ds(OUT, {"id": "BIGINT", "v2": "TEXT"}, {"v2": (IN, "v", "new", "T2")})]),
    _event(RUN2, "FAIL", 4, JOB, [], []),
    _event(RUN3, "COMPLETE", 5, "down", [_ds(OUT, {})], [_ds(FINAL, {"z": "STRING"}, {"z": (OUT, "v2", "up", "T3")})]),
]  # fmt: skip


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return [e for s in SCENARIOS for e in scenario_events(s)] + MADE


@pytest.fixture
def api(ch_client: Client, ch_database: str, events: list[dict[str, Any]]) -> tuple[LineageReader, Truth]:
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in events], derived_at=0)
    return LineageReader(ch_client, ch_database), truth(events)


def call(reader: LineageReader, path: str, **params: Any) -> tuple[int, Any]:
    try:
        status, body = 200, handle(reader, path, urlencode(params))
    except ApiError as exc:
        status, body = exc.status, exc.body()
    if VALIDATE:
        errors = CONTRACT.errors(path.removeprefix("/api/v1"), "GET", status, body)
        assert errors == [], (path, params, errors[:5])
    return status, body


def graph(reader: LineageReader, node_id: str, **params: Any) -> list[dict[str, Any]]:
    status, body = call(reader, "/api/v1/column-lineage", nodeId=node_id, **params)
    assert status == 200, (node_id, params, body)
    nodes: list[dict[str, Any]] = body["graph"]
    return nodes


def fid(c: Col, version: str | None = None) -> str:
    return f"datasetField:{c[0]}:{c[1]}:{c[2]}" + (f"#{version}" if version else "")


def utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def expected(t: Truth, start: set[Col], depth: int, down: bool, until: int | None = None) -> dict[str, Any]:
    """vertex id -> (its input fields as (id, description, type), is an output); and every edge (input, output)."""
    rows = lineage(t, start, depth, down) if until is None else lineage(t, start, depth, down, until)
    ins: dict[str, set[tuple[str, str | None, str | None]]] = {}
    for r in rows:
        ins.setdefault(fid(r.dst), set()).add((fid(r.src), r.description, r.kind))
        ins.setdefault(fid(r.src), set())
    return {"inputs": ins, "edges": {(fid(r.src), fid(r.dst)) for r in rows}, "rows": rows}


def check(nodes: list[dict[str, Any]], want: dict[str, Any], t: Truth) -> None:
    """The graph holds the model's vertices, inputs and edges, in Marquez's order and shape."""
    ids = [n["id"] for n in nodes]
    assert ids == sorted(ids, key=utf16) and set(ids) == set(want["inputs"])
    edges_in = {(e["destination"], e["origin"]) for n in nodes for e in n["inEdges"]}
    edges_out = {(e["origin"], e["destination"]) for n in nodes for e in n["outEdges"]}
    assert edges_in == edges_out == want["edges"]
    newest = {fid(r.dst): r for r in sorted(want["rows"], key=lambda r: (r.updated, r.run))}
    types = {vid: t.types.get((r.run, r.dst[:2]), {}).get(r.dst[2]) for vid, r in newest.items()}
    for n in nodes:
        data, vid = n["data"], n["id"]
        assert (n["type"], fid((data["namespace"], data["dataset"], data["field"]))) == ("DATASET_FIELD", vid)
        assert all(e["origin"] == vid for e in n["inEdges"] + n["outEdges"])
        got = {(fid((f["namespace"], f["dataset"], f["field"])), f["transformationDescription"],
                f["transformationType"]) for f in data["inputFields"]}  # fmt: skip
        assert got == want["inputs"][vid], vid
        order = [(f["namespace"], f["dataset"], f["datasetVersion"] or "", f["field"]) for f in data["inputFields"]]
        assert order == sorted(order)
        if data["inputFields"]:
            first = data["inputFields"][0]
            assert (data["transformationDescription"], data["transformationType"]) == (
                first["transformationDescription"], first["transformationType"])  # fmt: skip
            assert data["fieldType"] == types[vid]
        else:  # an input only: ColumnLineageNodeData(InputFieldNodeData)
            assert data["fieldType"] == "" and data["transformationDescription"] is data["transformationType"] is None


CASES = [
    ("datasetField:file:/tmp/cll_test:default.tbl1:ident", {("file:/tmp/cll_test", "default.tbl1", "ident")}),
    ("dataset:file:/tmp/cll_test/tbl1", "tbl1"),  # the physical name: an alias of the TABLE symlink
    ("dataset:bigquery:mock-project.test.upload_cp", "upload_cp"),
    ("datasetField:bigquery:mock-project.test.upload:a", {("bigquery", "mock-project.test.upload", "a")}),
    ("dataset:gs://mock-bucket:result.csv", "result"),
    ("dataset:hdfs://dataproc-producer-test-m:/user/hive/warehouse/t2", "t2"),
    ("dataset:file:/tmp/outputs/1729097570970", "shakespeare"),
    (f"datasetField:{NS}:{OUT}:v2", {(NS, OUT, "v2")}),
    (f"dataset:{NS}:{FINAL}", "final"),
]


def _start(t: Truth, node_id: str, named: set[Col] | str) -> set[Col]:
    if isinstance(named, set):  # fields as asked: Marquez's name of each one's dataset
        return {(*t.canon.get((c[0], c[1]), (c[0], c[1])), c[2]) for c in named}
    ns, _, name = node_id.removeprefix("dataset:").rpartition(":")
    return fields_of(t, t.canon.get((ns, name), (ns, name)))


@pytest.mark.parametrize("downstream", [False, True])
def test_graphs_match_marquez_s_query_at_every_depth(api: tuple[LineageReader, Truth], downstream: bool) -> None:
    reader, t = api
    for asked, named in CASES:
        start = _start(t, asked, named)
        assert start, asked
        for depth in (-1, 1, 2, 3, 8):
            want = expected(t, start, depth, downstream)
            check(graph(reader, asked, depth=depth, withDownstream=str(downstream).lower()), want, t)
        assert expected(t, start, 7, downstream)["edges"] == want["edges"]  # saturated by depth 8 ...
        default = graph(reader, asked, withDownstream=str(downstream).lower())  # ... so depth 20 (the default)
        check(default, want, t)


def test_the_newest_row_of_a_pair_wins_failed_runs_count_and_names_are_echoed(api: tuple[LineageReader, Truth]) -> None:
    reader, t = api
    nodes = {n["id"]: n for n in graph(reader, f"datasetField:{NS}:{OUT}:v2", depth=1)}
    v2 = nodes[fid((NS, OUT, "v2"))]["data"]
    assert (v2["namespace"], v2["dataset"], v2["field"], v2["fieldType"]) == (NS, OUT, "v2", "TEXT")  # RUN2's schema
    assert [(f["dataset"], f["field"], f["transformationDescription"], f["transformationType"])
            for f in v2["inputFields"]] == [(IN, "v", "new", "T2")]  # fmt: skip
    # the id field's pair was written by RUN1 only: its row stays
    whole = {n["id"]: n["data"] for n in graph(reader, f"dataset:{NS}:{OUT}", depth=1)}
    assert whole[fid((NS, OUT, "id"))]["inputFields"][0]["transformationDescription"] == "copy"
    # the job's newest run (RUN2, failed) wrote OUT: its fields start (findFieldsUuidsByJob)
    by_job = graph(reader, f"job:{JOB_NS}:{JOB}", depth=1)
    check(by_job, expected(t, job_start(t, (JOB_NS, JOB)), 1, False), t)
    assert {n["id"] for n in by_job} == {fid((NS, OUT, "id")), fid((NS, OUT, "v2")), fid((NS, IN, "id")),
                                         fid((NS, IN, "v"))}  # fmt: skip
    # a '#' before anything but a uuid is a name's: no refusal with withDownstream
    down = graph(reader, f"datasetField:{NS}:{OUT}:v2", depth=2, withDownstream="true")
    assert fid((NS, FINAL, "z")) in {n["id"] for n in down}


def test_jobs_answer_the_fields_their_newest_run_wrote(api: tuple[LineageReader, Truth]) -> None:
    reader, t = api
    spark = "cl_i_test_application.execute_insert_into_hive_table.warehouse_t2"
    cll = "open_lineage_integration_create_table.execute_create_hive_table_as_select_command.default_tbl1"
    for job in (("airflow", "BQ.copy"), ("default", spark), ("testColumnLevelLineage", cll)):
        start = job_start(t, job)
        assert start, job
        for depth, down in ((2, False), (20, True)):
            check(graph(reader, f"job:{job[0]}:{job[1]}", depth=depth, withDownstream=str(down).lower()),
                  expected(t, start, min(depth, 8), down), t)  # fmt: skip


def _versions(reader: LineageReader, ns: str, name: str) -> dict[str, str]:
    """writing run id -> version id, from the dataset versions route."""
    body = handle(reader, f"/api/v1/namespaces/{quote(ns, safe='')}/datasets/{quote(name, safe='')}/versions", "")
    assert isinstance(body, dict)
    return {v["createdByRun"]["id"]: v["version"] for v in body["versions"] if v.get("createdByRun")}


def _read_versions(reader: LineageReader, run: str) -> dict[tuple[str, str], str]:
    body = handle(reader, f"/api/v1/jobs/runs/{run}", "")
    assert isinstance(body, dict)
    return {(v["datasetVersionId"]["namespace"], v["datasetVersionId"]["name"]): v["datasetVersionId"]["version"]
            for v in body["inputDatasetVersions"]}  # fmt: skip


def test_versions_name_the_dataset_versions_and_a_version_pins_the_graph(api: tuple[LineageReader, Truth]) -> None:
    reader, t = api
    nodes = {n["id"]: n["data"] for n in graph(reader, f"dataset:{NS}:{OUT}", depth=1)}
    written = _versions(reader, NS, OUT)
    assert nodes[fid((NS, OUT, "v2"))]["datasetVersion"] == written[RUN2]
    assert nodes[fid((NS, OUT, "id"))]["datasetVersion"] == written[RUN1]
    read = _read_versions(reader, RUN2)[(NS, IN)]
    assert nodes[fid((NS, OUT, "v2"))]["inputFields"][0]["datasetVersion"] == read == nodes[fid((NS, IN, "v"))][
        "datasetVersion"]  # fmt: skip
    # RUN1's version: the lineage as it was then, every id versioned (toNodeId(..., includeVersion))
    until = t.first_event[RUN1]
    pinned = graph(reader, f"dataset:{NS}:{OUT}#{written[RUN1]}", depth=2)
    in1 = _read_versions(reader, RUN1)[(NS, IN)]
    want = expected(t, fields_of(t, (NS, OUT)), 2, False, until)
    assert {n["id"] for n in pinned} == {
        *(fid(r.dst, written[RUN1]) for r in want["rows"]), *(fid(r.src, in1) for r in want["rows"])}  # fmt: skip
    v2 = next(n["data"] for n in pinned if n["id"] == fid((NS, OUT, "v2"), written[RUN1]))
    assert (v2["inputFields"][0]["transformationDescription"], v2["fieldType"]) == ("old", "STRING")
    field = graph(reader, f"datasetField:{NS}:{OUT}:v2#{written[RUN1]}", depth=2)
    assert {n["id"] for n in field} == {fid((NS, OUT, "v2"), written[RUN1]), fid((NS, IN, "v"), in1)}
    # a job version (RUN3's, its job's only run): Marquez's findFieldsUuidsByJobVersion joins every dataset's
    # fields, so every row as of that run starts
    job_version = handle(reader, f"/api/v1/jobs/runs/{RUN3}", "")["jobVersion"]["version"]  # type: ignore[index]
    every = graph(reader, f"job:{JOB_NS}:down#{job_version}", depth=1)
    # a run names its inputs as sent (RunDao: dataset_versions' names); the rows name each dataset's group
    reads = {r.run: {t.canon.get(k, k): v for k, v in _read_versions(reader, r.run).items()} for r in latest(t)}
    assert {(e["origin"], e["destination"]) for n in every for e in n["outEdges"]} == {
        (fid(r.src, reads[r.run].get(r.src[:2])), fid(r.dst, _versions(reader, *r.dst[:2])[r.run]))
        for r in latest(t, t.first_event[RUN3])}  # fmt: skip


def test_errors_are_marquez_s(api: tuple[LineageReader, Truth]) -> None:
    reader, t = api
    path = "/api/v1/column-lineage"
    refused = (400, {"code": 400, "message": "Node version cannot be specified when withDownstream is true"})
    version = _versions(reader, NS, OUT)[RUN1]
    assert call(reader, path, nodeId=f"dataset:{NS}:{OUT}#{version}", withDownstream="true") == refused
    assert call(reader, path, nodeId=f"dataset:nowhere:x#{version}", withDownstream="true") == refused  # checked first
    missing = (404, {"code": 404, "message": "Could not find node"})
    for nid in ("dataset:nowhere:nothing", f"datasetField:{NS}:{OUT}:nope", "job:nowhere:nothing",
                "dataset:gs://mock-bucket:uploaded_file.txt",  # known, but no field at all
                f"dataset:{NS}:{OUT}#00000000-0000-0000-0000-000000000001", "nonsense"):  # fmt: skip
        assert call(reader, path, nodeId=nid) == missing, nid
    # fields but no row into them: an empty graph, even downstream (the walk starts at rows into the start)
    assert ("gs://mock-bucket", "copied.csv") not in {r.dst[:2] for r in t.rows.values()}
    for down in ("false", "true"):
        assert call(reader, path, nodeId="dataset:gs://mock-bucket:copied.csv", withDownstream=down) == (
            200, {"graph": []})  # fmt: skip
    assert call(reader, path, nodeId=f"dataset:{NS}:{OUT}", depth="x")[0] == 400
    run = call(reader, path, nodeId=f"run:{RUN1}")
    assert run[0] == 400 and run[1]["code"] == 400
    # the native mode is unchanged: Upriver's column edges, type and subtype
    native = handle(reader, path, urlencode({"node": node_id("DATASET", NS, OUT)}))
    assert isinstance(native, dict) and native["node"] == node_id("DATASET", NS, OUT)
    assert {"src": node_id("DATASET", NS, IN, "v"), "dst": node_id("DATASET", NS, OUT, "v2"), "type": "DIRECT",
            "subtype": None} in native["edges"]  # fmt: skip


def test_earlier_times_see_earlier_rows(api: tuple[LineageReader, Truth]) -> None:
    """`as_of` (Upriver's) bounds the rows' creation as a version does."""
    reader, t = api
    at = t.first_event[RUN2] - 1
    nodes = graph(reader, f"datasetField:{NS}:{OUT}:v2", depth=1, as_of=str(at))
    check(nodes, expected(t, {(NS, OUT, "v2")}, 1, False, at), t)
    assert [f["transformationDescription"] for n in nodes for f in n["data"]["inputFields"]] == ["old"]
