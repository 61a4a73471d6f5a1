"""The Marquez tag routes (upriver/http/marquez/tags.py) over HTTP, on a real ApiServer over embedded ClickHouse
holding the Flink corpus (tests/fixtures/openlineage-corpus/flink1.ndjson, openlineage-flink's events), with a recording
`Writes`: each write publishes one TagChange (its fields as the route's path gave them), answers 200 with
Marquez's Dataset / Job / Tag (checked against Marquez's OpenAPI schemas, tests/marquez_spec.py) already
showing the change before any sink loaded it, and 404s with Marquez's messages (DatasetResource,
JobResource, BaseResource.throwIfNotExists, the *NotFoundException classes) without publishing."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from marquez_spec import Contract

from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.http.api import ApiError
from upriver.http.server import ApiServer
from upriver.http.tags import tag_record
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus" / "flink1.ndjson"
NS, DATASET = "kafka://kafka-cluster-prod:9092", "io.openlineage.flink.kafka.output"
FIELDS = ("id", "version", "counter")  # its schema facet in the corpus
JOB_NS, JOB = "flink_job_namespace", "flink_conf_job"
CONTRACT = Contract()
DS_TAG = "/namespaces/{namespace}/datasets/{dataset}/tags/{tag}"
FIELD_TAG = "/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"
JOB_TAG = "/namespaces/{namespace}/jobs/{job}/tags/{tag}"


class Recorder:
    """A `Writes` that records each change (as the record Kafka would get), or refuses like a Kafka outage."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.down = False

    def tag_change(self, change: Mapping[str, Any]) -> None:
        if self.down:
            raise ApiError(503, "Kafka did not acknowledge the message within 30s")
        self.changes.append(tag_record(change))


@pytest.fixture
def server(ch_client: Client, ch_database: str) -> Iterator[tuple[str, Recorder]]:
    events = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in events], derived_at=0)
    writes = Recorder()
    api = ApiServer(LineageReader(ch_client, ch_database), "127.0.0.1", 0, writes=writes).start()
    yield api.url, writes
    api.stop()


def path(template: str, **parts: str) -> str:
    """An /api/v1 path with each part percent-encoded as one segment (`/` inside a name is %2F)."""
    for name, value in parts.items():
        template = template.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
    return "/api/v1" + template


def call(url: str, method: str, route: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        url + route, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ok(template: str, method: str, status: int, body: Any) -> Any:
    assert status == 200, body
    assert CONTRACT.errors(template, method, status, body) == []
    return body


def test_dataset_tag_and_untag_answer_the_dataset_with_its_tags(server: tuple[str, Recorder]) -> None:
    url, writes = server
    body = ok(DS_TAG, "POST", *call(url, "POST", path(DS_TAG, namespace=NS, dataset=DATASET, tag="pii/eu: #1%")))
    assert (body["namespace"], body["name"], body["tags"]) == (NS, DATASET, ["pii/eu: #1%"])
    assert [{k: c[k] for k in ("op", "entity", "namespace", "name", "field", "tag")} for c in writes.changes] == [
        {"op": "ADD", "entity": "DATASET", "namespace": NS, "name": DATASET, "field": None, "tag": "pii/eu: #1%"}
    ]
    ok(DS_TAG, "POST", *call(url, "POST", path(DS_TAG, namespace=NS, dataset=DATASET, tag="gold")))
    body = ok(DS_TAG, "DELETE", *call(url, "DELETE", path(DS_TAG, namespace=NS, dataset=DATASET, tag="pii/eu: #1%")))
    assert body["tags"] == ["gold"]
    assert [c["op"] for c in writes.changes] == ["ADD", "ADD", "REMOVE"]
    assert len({c["change_id"] for c in writes.changes}) == 3
    # the GET of the dataset shows the same, before any sink loaded the changes
    status, got = call(url, "GET", path("/namespaces/{namespace}/datasets/{dataset}", namespace=NS, dataset=DATASET))
    assert (status, got["tags"]) == (200, ["gold"])


def test_field_tags_are_upper_cased_and_shown_on_the_field(server: tuple[str, Recorder]) -> None:
    url, writes = server
    route = path(FIELD_TAG, namespace=NS, dataset=DATASET, field="version", tag="pii")
    body = ok(FIELD_TAG, "POST", *call(url, "POST", route))
    fields = {f["name"]: f["tags"] for f in body["fields"]}
    assert set(fields) == set(FIELDS) and fields["version"] == ["PII"] and fields["id"] == []
    assert body["tags"] == []
    assert (writes.changes[0]["entity"], writes.changes[0]["field"], writes.changes[0]["tag"]) == (
        "FIELD",
        "version",
        "PII",
    )
    body = ok(FIELD_TAG, "DELETE", *call(url, "DELETE", route))  # DELETE .../tags/pii removes PII
    assert {f["name"]: f["tags"] for f in body["fields"]}["version"] == []
    assert writes.changes[1]["op"] == "REMOVE" and writes.changes[1]["tag"] == "PII"


def test_job_tag_and_untag_answer_the_job(server: tuple[str, Recorder]) -> None:
    url, writes = server
    body = ok(JOB_TAG, "POST", *call(url, "POST", path(JOB_TAG, namespace=JOB_NS, job=JOB, tag="nightly")))
    assert (body["namespace"], body["name"], body["tags"]) == (JOB_NS, JOB, ["nightly"])
    body = ok(JOB_TAG, "DELETE", *call(url, "DELETE", path(JOB_TAG, namespace=JOB_NS, job=JOB, tag="nightly")))
    assert body["tags"] == []
    assert [(c["op"], c["entity"], c["namespace"], c["name"]) for c in writes.changes] == [
        ("ADD", "JOB", JOB_NS, JOB), ("REMOVE", "JOB", JOB_NS, JOB)]  # fmt: skip


def test_put_tag_defines_it_and_the_tags_list_shows_every_defined_tag(server: tuple[str, Recorder]) -> None:
    url, writes = server
    status, body = call(url, "PUT", "/api/v1/tags/SENSITIVE", {"description": "Contains sensitive information"})
    assert ok("/tags/{tag}", "PUT", status, body) == {
        "name": "SENSITIVE",
        "description": "Contains sensitive information",
    }
    status, body = call(url, "PUT", "/api/v1/tags/SENSITIVE", {})  # no description: keeps the one it has
    assert body == {"name": "SENSITIVE", "description": "Contains sensitive information"}
    status, body = call(url, "PUT", "/api/v1/tags/a%20b", b"")
    assert (status, body) == (200, {"name": "a b", "description": None})
    ok(JOB_TAG, "POST", *call(url, "POST", path(JOB_TAG, namespace=JOB_NS, job=JOB, tag="made-by-tagging")))
    assert [(c["op"], c["entity"], c["tag"], c["description"]) for c in writes.changes] == [
        ("DEFINE", "TAG", "SENSITIVE", "Contains sensitive information"), ("DEFINE", "TAG", "SENSITIVE", None),
        ("DEFINE", "TAG", "a b", None), ("ADD", "JOB", "made-by-tagging", None)]  # fmt: skip
    status, body = call(url, "GET", "/api/v1/tags")
    assert ok("/tags", "GET", status, body) == {"tags": [
        {"name": "SENSITIVE", "description": "Contains sensitive information"},
        {"name": "a b", "description": None}, {"name": "made-by-tagging", "description": None}]}  # fmt: skip
    assert call(url, "GET", "/api/v1/tags?limit=1&offset=1")[1] == {"tags": [{"name": "a b", "description": None}]}
    assert call(url, "PUT", "/api/v1/tags/x", b"{not json")[0] == 400


@pytest.mark.parametrize(
    ("method", "route", "message"),
    [
        ("POST", path(DS_TAG, namespace=NS, dataset="no.such.table", tag="t"), "Dataset 'no.such.table' not found."),
        ("DELETE", path(DS_TAG, namespace="no-such-ns", dataset=DATASET, tag="t"), "Namespace 'no-such-ns' not found."),
        ("POST", path(FIELD_TAG, namespace=NS, dataset=DATASET, field="nope", tag="t"),
         f"Field 'nope' not found for dataset '{DATASET}'."),
        ("DELETE", path(FIELD_TAG, namespace=NS, dataset="x/y", field="id", tag="t"), "Dataset 'x/y' not found."),
        ("POST", path(JOB_TAG, namespace=JOB_NS, job="no.such.job", tag="t"), "Job 'no.such.job' not found."),
        ("DELETE", path(JOB_TAG, namespace="no-such-ns", job=JOB, tag="t"), "Namespace 'no-such-ns' not found."),
    ],
)  # fmt: skip
def test_unknown_dataset_field_job_or_namespace_is_marquez_404(
    server: tuple[str, Recorder], method: str, route: str, message: str
) -> None:
    url, writes = server
    status, body = call(url, method, route)
    assert (status, body) == (404, {"code": 404, "message": message})
    assert writes.changes == []


def test_kafka_away_answers_503_and_nothing_shows(server: tuple[str, Recorder]) -> None:
    url, writes = server
    writes.down = True
    status, body = call(url, "POST", path(JOB_TAG, namespace=JOB_NS, job=JOB, tag="lost"))
    assert (status, body) == (503, {"code": 503, "message": "Kafka did not acknowledge the message within 30s"})
    writes.down = False
    status, body = call(url, "GET", path("/namespaces/{namespace}/jobs/{job}", namespace=JOB_NS, job=JOB))
    assert status == 200 and "lost" not in body["tags"]
    assert call(url, "GET", "/api/v1/tags")[1] == {"tags": []}
