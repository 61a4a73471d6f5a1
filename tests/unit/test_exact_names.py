"""The defects real producers showed (issue 11), one test each, through the read API over embedded
ClickHouse: ambiguous ids, aliases arriving later, column lineage without listed inputs, FAIL runs named as
producers, jobs missing from the graph, accepted facets invisible."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from ol_check import InProcess

from schemas.identity import node_id
from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.53.0/integration/spark"


def ev(run: str, etype: str, t: int, job: str, ins: Any = (), outs: Any = (), **run_facets: Any) -> dict[str, Any]:
    return {
        "eventType": etype, "eventTime": f"2026-01-01T00:00:{t:02d}Z", "producer": PRODUCER,
        "run": {"runId": run, "facets": run_facets}, "job": {"namespace": "spark://cluster", "name": job},
        "inputs": list(ins), "outputs": list(outs),
    }  # fmt: skip


def ds(ns: str, name: str, **facets: Any) -> dict[str, Any]:
    return {"namespace": ns, "name": name, "facets": facets}


WH = "file:/data/warehouse"
P_NS, P_NAME = "file", "/data/warehouse/shop.db/revenue"
TABLE = {"identifiers": [{"namespace": WH, "name": "shop.revenue", "type": "TABLE"}]}
SEED_COLUMNS = {
    "fields": {"id": {"inputFields": [{"namespace": "duckdb:///tmp/shop.duckdb", "name": "shop.main.raw", "field": "id",
                                      "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]}},
    "dataset": [{"namespace": "s3://bucket", "name": "a/b.parquet", "field": "country",
                 "transformations": [{"type": "INDIRECT", "subtype": "FILTER"}]}],
}  # fmt: skip
EVENTS = [
    # two datasets the old grammar made one node
    ev("r1", "COMPLETE", 1, "w1", outs=[ds("s3://bucket", "a/b.parquet")]),
    ev("r2", "COMPLETE", 2, "w2", outs=[ds("s3://bucket/a", "b.parquet")]),
    # a CTAS writes the path (no symlink) and a reader reads it; later the table is written by name
    ev("r3", "COMPLETE", 3, "ctas", [ds("s3://bucket", "a/b.parquet")], [ds(P_NS, P_NAME)]),
    ev("r4", "COMPLETE", 4, "report", [ds(P_NS, P_NAME)], [ds("file", "/data/out/report")]),
    ev("r5", "COMPLETE", 5, "insert", [ds("postgres://db:5432", "public.orders")], [ds(P_NS, P_NAME, symlinks=TABLE)]),
    # a dbt model whose sources are named only inside columnLineage
    ev("r6", "COMPLETE", 6, "stg", outs=[ds("duckdb:///tmp/shop.duckdb", "shop.main.stg", columnLineage=SEED_COLUMNS)]),
    # a run that starts writing, then fails; a test job that only reads
    ev("r7", "START", 7, "stg", outs=[ds("duckdb:///tmp/shop.duckdb", "shop.main.stg")]),
    ev("r7", "FAIL", 8, "stg", errorMessage={"message": "Binder Error", "programmingLanguage": "sql"}),
    ev("r8", "COMPLETE", 9, "stg.test",
       [ds("duckdb:///tmp/shop.duckdb", "shop.main.stg",
           dataQualityAssertions={"assertions": [{"assertion": "not_null", "success": False, "column": "id"}]},
           documentation={"description": "staged rows"})]),
]  # fmt: skip


@pytest.fixture
def api(ch_client: Client, ch_database: str) -> InProcess:
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in EVENTS], derived_at=0)
    return InProcess(LineageReader(ch_client, ch_database))


def get(api: InProcess, path: str, **params: str) -> Any:
    found = api.get(path, **params)
    assert found is not None, (path, params)
    return found


def test_names_holding_slashes_and_colons_are_distinct_nodes_echoed_unchanged(api: InProcess) -> None:
    a = get(api, "/api/v1/node", node=node_id("DATASET", "s3://bucket", "a/b.parquet"))
    b = get(api, "/api/v1/node", node=node_id("DATASET", "s3://bucket/a", "b.parquet"))
    assert a["id"] != b["id"]
    assert (a["namespace"], a["name"], a["producing_job"]) == ("s3://bucket", "a/b.parquet", "job:spark://cluster/w1")
    assert (b["namespace"], b["name"], b["producing_job"]) == ("s3://bucket/a", "b.parquet", "job:spark://cluster/w2")
    graph = get(api, "/api/v1/lineage", nodeId="dataset:postgres://db:5432:public.orders")["graph"]
    vertex = next(v for v in graph if v["type"] == "DATASET" and v["data"]["name"] == "public.orders")
    assert vertex["data"]["namespace"] == "postgres://db:5432"


def test_every_name_resolves_to_one_node_and_a_late_alias_re_points_stored_rows(api: InProcess) -> None:
    by_path = get(api, "/api/v1/node", node=node_id("DATASET", "file", "/data/warehouse/shop.db/revenue"))
    by_name = get(api, "/api/v1/node", node=node_id("DATASET", WH, "shop.revenue"))
    assert by_path["id"] == by_name["id"] == node_id("DATASET", WH, "shop.revenue")
    assert {"namespace": "file", "name": "/data/warehouse/shop.db/revenue"} in [
        {k: a[k] for k in ("namespace", "name")} for a in by_name["aliases"]
    ]
    # r4 read the path before the symlink was ever sent: its report is downstream of the table
    down = {n["id"] for n in get(api, "/api/v1/downstream", node=by_path["id"], depth="1")["nodes"]}
    assert node_id("DATASET", "file", "/data/out/report") in down
    up = {n["id"] for n in get(api, "/api/v1/upstream", node=by_name["id"], depth="1")["nodes"]}
    assert {
        node_id("DATASET", "s3://bucket", "a/b.parquet"),
        node_id("DATASET", "postgres://db:5432", "public.orders"),
    } <= up
    assert by_name["id"] in get(api, "/api/v1/search", q="shop.db/revenue")["nodes"]


def test_column_lineage_without_listed_inputs_and_dataset_level_entries_are_queryable(api: InProcess) -> None:
    stg = node_id("DATASET", "duckdb:///tmp/shop.duckdb", "shop.main.stg")
    raw = node_id("DATASET", "duckdb:///tmp/shop.duckdb", "shop.main.raw")
    want = {"src": f"{raw}#id", "dst": f"{stg}#id", "type": "DIRECT", "subtype": "IDENTITY"}
    assert want in get(api, "/api/v1/column-lineage", node=stg)["edges"]
    assert want in get(api, "/api/v1/column-lineage", node=raw)["edges"]  # from both ends
    whole = get(api, "/api/v1/column-lineage", node=stg)["edges"]
    assert {"src": f"{node_id('DATASET', 's3://bucket', 'a/b.parquet')}#country", "dst": f"{stg}#", "type": "INDIRECT",
            "subtype": "FILTER"} in whole  # fmt: skip
    up = get(api, "/api/v1/upstream", node=f"{stg}#id", depth="1")["nodes"]
    assert f"{raw}#id" in {n["id"] for n in up}
    assert get(api, "/api/v1/node", node=raw)["name"] == "shop.main.raw"  # named only as a column source


def test_a_failed_run_never_produces_and_shows_as_an_attempt_with_its_error(api: InProcess) -> None:
    stg = get(api, "/api/v1/node", node=node_id("DATASET", "duckdb:///tmp/shop.duckdb", "shop.main.stg"))
    assert stg["producing_run"] == "r6"
    attempts = {v["run_id"]: v for v in stg["versions"]}
    assert attempts["r7"]["status"] == "FAIL" and attempts["r7"]["produced"] is False
    assert attempts["r7"]["error"] == "Binder Error"
    assert get(api, "/api/v1/run", id="r7")["error"] == "Binder Error"


def test_jobs_are_vertices_even_when_they_only_read(api: InProcess) -> None:
    stg = node_id("DATASET", "duckdb:///tmp/shop.duckdb", "shop.main.stg")
    graph = get(api, "/api/v1/lineage", nodeId="dataset:duckdb:///tmp/shop.duckdb:shop.main.stg", depth="2")["graph"]
    jobs = {v["id"]: v for v in graph if v["type"] == "JOB"}
    assert "job:spark://cluster:stg.test" in jobs
    assert jobs["job:spark://cluster:stg.test"]["inEdges"] == [
        {"origin": "dataset:duckdb:///tmp/shop.duckdb:shop.main.stg", "destination": "job:spark://cluster:stg.test"}
    ]
    test_job = get(api, "/api/v1/node", node="job:spark://cluster/stg.test")
    assert (test_job["namespace"], test_job["name"], test_job["inputs"]) == ("spark://cluster", "stg.test", [stg])
    assert {n["id"] for n in get(api, "/api/v1/upstream", node="job:spark://cluster/stg.test", depth="1")["nodes"]} == {
        "job:spark://cluster/stg.test", stg}  # fmt: skip
    via = get(api, "/api/v1/downstream", node=stg, depth="2", via_jobs="true")
    assert {"src": stg, "dst": "job:spark://cluster/stg.test", "edge_type": "READS"} in via["edges"]
    assert get(api, "/api/v1/lineage", nodeId="job:spark://cluster:stg.test") is not None


def test_accepted_facets_are_returned_with_the_node(api: InProcess) -> None:
    stg = get(api, "/api/v1/node", node=node_id("DATASET", "duckdb:///tmp/shop.duckdb", "shop.main.stg"))
    assert stg["facets"]["documentation"] == {"description": "staged rows"}
    assert stg["facets"]["dataQualityAssertions"]["assertions"][0]["success"] is False
    assert "columnLineage" in stg["facets"] and "upriverAliases" not in stg["facets"]


def test_marquez_column_lineage_walks_fields_both_ways(api: InProcess) -> None:
    """Marquez's rules (upriver/http/marquez/columns.py): the walk starts at the rows *into* the start fields, so a
    source column (shop.main.raw:id, named only inside stg's facet) reaches nothing, even downstream; the input's
    transformation is the output column's transformationDescription/transformationType (none sent here), and the
    input's version is null (r6 does not list raw as an input). The dataset-level entry (country) is no field."""
    stg = "datasetField:duckdb:///tmp/shop.duckdb:shop.main.stg:id"
    raw = "datasetField:duckdb:///tmp/shop.duckdb:shop.main.raw:id"
    graph = {v["id"]: v for v in get(api, "/api/v1/column-lineage", nodeId=stg)["graph"]}
    assert set(graph) == {stg, raw}
    assert graph[stg]["type"] == "DATASET_FIELD"
    assert graph[stg]["data"]["inputFields"] == [
        {"namespace": "duckdb:///tmp/shop.duckdb", "dataset": "shop.main.raw", "datasetVersion": None, "field": "id",
         "transformationDescription": None, "transformationType": None}
    ]  # fmt: skip
    assert graph[stg]["inEdges"] == [{"origin": stg, "destination": raw}]  # Marquez's edge shape
    assert graph[raw]["outEdges"] == [{"origin": raw, "destination": stg}]
    assert (graph[raw]["data"]["fieldType"], graph[raw]["data"]["inputFields"]) == ("", [])
    assert get(api, "/api/v1/column-lineage", nodeId=raw)["graph"] == []
    assert get(api, "/api/v1/column-lineage", nodeId=raw, withDownstream="true")["graph"] == []
    whole = get(api, "/api/v1/column-lineage", nodeId="dataset:duckdb:///tmp/shop.duckdb:shop.main.stg")["graph"]
    assert {v["id"] for v in whole} == {stg, raw}
    both = get(api, "/api/v1/column-lineage", nodeId=stg, withDownstream="true")["graph"]
    assert {v["id"] for v in both} == {stg, raw}
