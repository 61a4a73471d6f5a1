"""OpenLineage -> LineageEvent mapping (schemas/openlineage.py) and the HTTP ingest's refusals."""

from __future__ import annotations

import gzip
import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processors.lineage import runs
from processors.lineage.validation import problems
from schemas.codec import make_codec
from schemas.identity import node_id
from schemas.openlineage import MAX_EVENT_BYTES, PRODUCER_NS, OpenLineageError, decode, event_id, to_record
from upriver.http.ingest import IngestError, OpenLineageIngest, body_bytes
from upriver.http.openapi import openapi
from upriver.http.server import ApiServer

# a copy of ../shared/openlineage-corpus (Apache-2.0 fixtures; see its README), so CI on a clean clone has it
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus"
RUN_ID = "3f5e2c1a-9b7d-4e21-8f0e-5a6b7c8d9e01"


def event(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "eventTime": "2026-03-01T10:00:00.000+01:00",
        "eventType": "COMPLETE",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": RUN_ID, "facets": {}},
        "job": {"namespace": "airflow", "name": "etl.load_orders"},
        "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
        "outputs": [{"namespace": "snowflake://acct", "name": "dw.sales.orders"}],
    }
    doc.update(over)
    return doc


def test_a_run_event_maps_to_a_lineage_event() -> None:
    rec = to_record(event())
    assert rec["event_time"] == 1772355600000  # 09:00 UTC
    assert (rec["event_type"], rec["job_namespace"], rec["job_name"], rec["run_id"]) == (
        "COMPLETE", "airflow", "etl.load_orders", RUN_ID
    )  # fmt: skip
    assert [(a["kind"], a["namespace"], a["name"]) for a in rec["inputs"]] == [
        ("DATASET", "postgres://db:5432", "shop.public.orders")
    ]
    assert problems(rec) == []
    make_codec("lineage_event").encode(rec)  # the Avro contract takes it
    assert json.loads(rec["facets"])["openlineage"]["eventType"] == "COMPLETE"


def test_event_ids_and_stored_facets_keep_their_documented_form_across_versions() -> None:
    """An id is uuid5 of the event as sorted compact JSON (ASCII escapes), a dataset's facets are stored as sorted
    json.dumps: a retry sent after an upgrade must still be known as the same event."""
    for line in (CORPUS / "dbt-postgres-duckdb.ndjson").read_text().splitlines()[:20]:
        doc = json.loads(line)
        doc["job"]["name"] = "modèle ✓"  # non-ASCII: escaped in the canonical form
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        record = to_record(doc)
        assert record["event_id"] == str(uuid.uuid5(PRODUCER_NS, canonical))
        for side, key in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
            for ds, artifact in zip(doc.get(side) or [], [a for a in record[side]], strict=True):
                facets = {**(ds.get("facets") or {}), **(ds.get(key) or {})}
                if facets and "upriverAliases" not in artifact["facets"] and "columnLineage" not in facets:
                    assert artifact["facets"] == json.dumps(facets, sort_keys=True)


def test_event_ids_are_stable_for_a_retry_and_differ_otherwise() -> None:
    assert to_record(event())["event_id"] == to_record(json.loads(json.dumps(event())))["event_id"]
    assert to_record(event())["event_id"] != to_record(event(eventType="START"))["event_id"]
    assert event_id(event()) == to_record(event())["event_id"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"eventTime": None}, "eventTime is required"),
        ({"eventTime": "yesterday"}, "not an ISO 8601"),
        ({"producer": ""}, "producer is required"),
        ({"run": {"facets": {}}}, "run.runId is required"),
        ({"job": {"namespace": "airflow"}}, "job.name is required"),
        ({"job": None}, "job is required"),
        ({"inputs": [{"namespace": "pg"}]}, "inputs[0].name is required"),
        ({"outputs": [{"name": "x"}]}, "outputs[0].namespace is required"),
        ({"inputs": {"namespace": "pg"}}, "inputs must be a list"),
    ],
)
def test_required_fields_are_enforced_with_a_reason(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(OpenLineageError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        to_record(event(**change))


def test_odd_facets_never_drop_lineage_and_unknown_event_types_are_other() -> None:
    doc = event(eventType="WEIRD")
    doc["run"]["facets"] = {"custom": [1, 2], "parent": "not an object", "nominalTime": {"_deleted": None}}
    doc["outputs"][0]["facets"] = {"schema": "broken", "version": 3, "weird": {"x": {"y": None}}}
    rec = to_record(doc)
    assert rec["event_type"] == "OTHER" and rec["parent_run_id"] is None
    assert len(rec["outputs"]) == 1 and json.loads(rec["outputs"][0]["facets"])["weird"] == {"x": {"y": None}}
    assert rec["outputs"][0]["version"] is None


def test_facets_version_parent_job_type_and_errors() -> None:
    doc = event(eventType="FAIL")
    doc["run"]["facets"] = {
        "parent": {"run": {"runId": "11111111-2222-4333-8444-555555555555"}, "job": {"namespace": "a", "name": "dag"}},
        "errorMessage": {"message": "boom", "programmingLanguage": "python"},
    }
    doc["job"]["facets"] = {"jobType": {"processingType": "BATCH", "integration": "DBT", "jobType": "MODEL"}}
    doc["outputs"][0]["facets"] = {"version": {"datasetVersion": "42"}}
    doc["outputs"][0]["outputFacets"] = {"outputStatistics": {"rowCount": 10}}
    rec = to_record(doc)
    assert rec["parent_run_id"] == "11111111-2222-4333-8444-555555555555"
    assert rec["job_kind"] == "TRANSFORM"
    assert rec["outputs"][0]["version"] == "42"
    facets = json.loads(rec["outputs"][0]["facets"])
    assert facets["outputStatistics"] == {"rowCount": 10}
    state = runs.merge(None, rec)[0]
    assert state.error == "boom" and state.status == "FAIL"
    assert json.loads(rec["facets"])["jobFacets"]["jobType"]["integration"] == "DBT"


def test_symlinks_merge_aliases_into_one_node_and_column_lineage_follows() -> None:
    table = {"identifiers": [{"namespace": "hive://metastore", "name": "sales.orders", "type": "TABLE"}]}
    by_path = event(
        inputs=[{"namespace": "s3://lake", "name": "/warehouse/sales/orders", "facets": {"symlinks": table}}],
        outputs=[
            {
                "namespace": "s3://lake",
                "name": "/warehouse/sales/daily",
                "facets": {
                    "columnLineage": {
                        "fields": {
                            "total": {
                                "inputFields": [
                                    {"namespace": "s3://lake", "name": "/warehouse/sales/orders", "field": "amount"}
                                ]
                            }
                        }
                    }
                },
            }
        ],
    )
    rec = to_record(by_path)
    assert (rec["inputs"][0]["namespace"], rec["inputs"][0]["name"]) == ("hive://metastore", "sales.orders")
    aliases = json.loads(rec["inputs"][0]["facets"])["upriverAliases"]
    assert aliases == [{"namespace": "s3://lake", "name": "/warehouse/sales/orders"}]
    by_name = to_record(event(inputs=[{"namespace": "hive://metastore", "name": "sales.orders"}]))
    assert by_name["inputs"][0]["name"] == rec["inputs"][0]["name"]  # the same node either way
    edges = runs.edges(runs.merge(None, rec)[0], 0)
    column = [e for e in edges if e["edge_type"].startswith("COLUMN")]
    assert [(e["src"], e["dst"]) for e in column] == [
        (
            "dataset:hive://metastore/sales.orders#amount",
            node_id("DATASET", "s3://lake", "/warehouse/sales/daily", "total"),
        )
    ]


def test_dataset_and_job_events() -> None:
    ds = to_record(
        {
            "eventTime": "2026-03-01T10:00:00Z",
            "producer": "p",
            "dataset": {"namespace": "pg", "name": "t", "facets": {"ownership": {"owners": [{"name": "team:a"}]}}},
        }
    )
    assert ds["inputs"][0]["name"] == "t" and ds["outputs"] == [] and ds["event_type"] == "OTHER"
    job = to_record({k: v for k, v in event().items() if k not in ("run", "eventType")})
    assert job["run_id"] != RUN_ID and job["event_type"] == "OTHER"
    assert problems(ds) == problems(job) == []


def test_size_limit_and_json_errors() -> None:
    with pytest.raises(OpenLineageError, match="the limit is"):
        decode(b" " * (MAX_EVENT_BYTES + 1))
    with pytest.raises(OpenLineageError, match="not JSON"):
        decode(b"{nope")
    with pytest.raises(OpenLineageError, match="JSON object"):
        to_record([1, 2])
    assert body_bytes(gzip.compress(b'{"a": 1}'), "gzip") == b'{"a": 1}'
    with pytest.raises(IngestError, match="decompressed"):
        body_bytes(gzip.compress(b"x" * 2000), "gzip", limit=1000)
    with pytest.raises(IngestError, match="not supported"):
        body_bytes(b"x", "br")


def test_the_corpus_maps_as_its_readme_says() -> None:
    accepted, refused = 0, []
    for path in sorted(CORPUS.glob("*.ndjson")):
        for i, line in enumerate(path.read_text().splitlines()):
            try:
                rec = to_record(decode(line.encode()))
                assert problems(rec) == []
                accepted += 1
            except OpenLineageError as exc:
                refused.append((path.name, i, str(exc)))
    assert accepted == 380 + 15 + 3 + 2 + 5
    assert refused == [("fluentd-invalid.ndjson", 5, "run.runId is required (a non-empty string), got None")]


# ---- HTTP refusals (no Kafka needed: nothing here is published) ------------------------------------


class _NoReader:
    pass


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    ingest = OpenLineageIngest({"bootstrap.servers": "127.0.0.1:9"}, "unused", make_codec("lineage_event"))
    api = ApiServer(_NoReader(), "127.0.0.1", 0, ingest=ingest, token="s3cret").start()  # type: ignore[arg-type]
    yield api
    api.stop()


def _post(api: ApiServer, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(f"{api.url}{path}", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


AUTH = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}


def test_http_needs_the_bearer_token(server: ApiServer) -> None:
    status, body = _post(server, "/api/v1/lineage", json.dumps(event()).encode(), {})
    assert status == 401 and "s3cret" not in json.dumps(body)
    status, _ = _post(server, "/api/v1/lineage", b"{}", {"Authorization": "Bearer wrong"})
    assert status == 401


def test_http_refuses_bad_events_with_their_reason(server: ApiServer) -> None:
    status, body = _post(server, "/api/v1/lineage", json.dumps(event(run={})).encode(), AUTH)
    assert (status, body["error"]) == (400, "run.runId is required (a non-empty string), got None")
    status, body = _post(server, "/api/v1/lineage", gzip.compress(b"not json"), {**AUTH, "Content-Encoding": "gzip"})
    assert status == 400 and body["error"].startswith("not JSON")
    status, body = _post(server, "/api/v1/lineage", b" " * (MAX_EVENT_BYTES + 1), AUTH)
    assert status == 413 and "limit" in body["error"]
    status, body = _post(server, "/api/v1/lineage/batch", json.dumps([event(run={}), {"x": 1}]).encode(), AUTH)
    assert status == 400 and body["received"] == 2 and body["successful"] == 0
    assert [f["index"] for f in body["failures"]] == [0, 1]


def test_openapi_document_lists_every_route() -> None:
    doc = openapi()
    assert doc["openapi"].startswith("3.")
    assert {
        "/api/v1/lineage",
        "/api/v1/lineage/batch",
        "/api/v1/upstream",
        "/api/v1/alerts",
        "/api/v1/pipeline",
    } <= set(doc["paths"])
    assert "post" in doc["paths"]["/api/v1/lineage"] and "get" in doc["paths"]["/api/v1/lineage"]


def test_request_metrics_label_only_known_routes() -> None:
    from upriver.http.server import _route_label

    assert _route_label("/api/v1/lineage/batch") == "/api/v1/lineage/batch"
    assert _route_label("/ui/app.js") == "/ui/app.js"
    assert _route_label("/api/v1/upstream/../../etc/passwd") == "other"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"job": {"namespace": "airflow", "name": "\ud800"}}, "job.name '\\ud800' is not valid Unicode"),
        ({"producer": "p\udfff"}, "producer 'p\\udfff' is not valid Unicode"),
        ({"run": {"runId": "\ud83d"}}, "run.runId '\\ud83d' is not valid Unicode"),
    ],
)
def test_lone_surrogates_in_required_fields_are_refused(change: dict[str, Any], fragment: str) -> None:
    """JSON's \\ud800 escapes decode to lone surrogates, which Avro cannot encode: the wiring used to raise
    UnicodeEncodeError (PROCESSING dead letter; HTTP 500) instead of refusing the event (fuzz target)."""
    with pytest.raises(OpenLineageError, match=re.escape(fragment)):
        to_record(decode(json.dumps(event(**change)).encode()))


def test_lone_surrogates_in_optional_places_are_dropped_and_the_event_encodes() -> None:
    symlink = {"symlinks": {"identifiers": [{"namespace": "\ud800", "name": "t", "type": "TABLE"}]}}
    doc = event(
        schemaURL="\udfff",
        run={"runId": RUN_ID, "facets": {"parent": {"run": {"runId": "\ud800"}}}},
        inputs=[{"namespace": "pg", "name": "t", "facets": symlink}],
        outputs=[{"namespace": "sf", "name": "o", "facets": {"version": {"datasetVersion": "\ud800"}}}],
    )
    record = to_record(decode(json.dumps(doc).encode()))
    assert record["parent_run_id"] is None and record["outputs"][0]["version"] is None
    assert (record["inputs"][0]["namespace"], record["inputs"][0]["name"]) == ("pg", "t")  # the odd symlink skipped
    codec = make_codec("lineage_event")
    assert codec.decode(codec.encode(record))["schema_url"].startswith("https://openlineage.io/")
