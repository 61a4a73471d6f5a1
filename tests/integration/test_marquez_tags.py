"""Marquez's tag writes through the real stack (the stack of tests/integration/test_openlineage_stack.py: a
LocalStack of its own, the session's broker and chDB): tags POSTed and DELETEd over HTTP are TagChange
records on the tags topic, keyed by their entity; the sink loads them; GET of the dataset and of the job
shows them; a restarted stack still shows them (from the table: the new process holds no acknowledged
change), and a new database with a new sink group rebuilds them from the topic (a replay)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from stack_support import isolated_settings, wait_until

from schemas.codec import make_codec
from upriver.local.stack import LocalStack, free_port
from upriver.settings import Settings

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus" / "dbt-postgres-duckdb.ndjson"
TOKEN = "tags-test-token"
NS, DATASET, FIELD = "snowflake://ASDF1234.eu-central-1.aws", "DEMO_DB.public.customers", "first_name"
JOB_NS, JOB = "job-namespace", "DEMO_DB.public.jaffle_shop.customers"


def _call(stack: LocalStack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    assert stack.api is not None
    request = urllib.request.Request(
        stack.api.url + path, data=None if body is None else json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _path(*parts: str) -> str:
    return "/api/v1/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


DATASET_PATH = _path("namespaces", NS, "datasets", DATASET)
JOB_PATH = _path("namespaces", JOB_NS, "jobs", JOB)


def _shown(stack: LocalStack) -> tuple[list[str], list[str], list[str]]:
    """(dataset tags, the field's tags, job tags) as GET of the dataset and of the job answer them."""
    status, dataset = _call(stack, "GET", DATASET_PATH)
    assert status == 200, dataset
    status, job = _call(stack, "GET", JOB_PATH)
    assert status == 200, job
    field = next(f for f in dataset["fields"] if f["name"] == FIELD)
    return dataset["tags"], field["tags"], job["tags"]


def _stored(stack: LocalStack) -> int:
    assert stack.storage is not None
    sql = f"SELECT count() FROM `{stack.storage.database}`.tag_changes"
    return int(stack.storage.read_client.query(sql).result_rows[0][0])


def _topic_records(settings: Settings, count: int, timeout: float = 60) -> list[tuple[bytes, dict[str, Any]]]:
    codec = make_codec("tag_change", settings.schema_registry_url, settings.topics.tags)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"read-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([settings.topics.tags])
    found: list[tuple[bytes, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append((message.key() or b"", codec.decode(message.value() or b"")))
    finally:
        consumer.close()
    return found


def test_tags_go_through_kafka_and_survive_a_restart_and_a_replay(
    kafka_bootstrap: str, chdb_url: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, chdb_url, tmp_path, "tags", api_token=TOKEN, health_enabled=False)
    want = (["gold"], ["PII"], ["nightly"])
    with LocalStack(settings, api_port=free_port()) as stack:
        stack.wait_worker_ready()
        events = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
        status, result = _call(stack, "POST", "/api/v1/lineage/batch", events)
        assert status == 200 and result["successful"] > 0, result
        wait_until(lambda: _call(stack, "GET", DATASET_PATH)[0] == 200 and _call(stack, "GET", JOB_PATH)[0] == 200,
                   what="the dataset and the job loaded")  # fmt: skip
        writes = [
            ("POST", _path("namespaces", NS, "datasets", DATASET, "tags", "gold")),
            ("POST", _path("namespaces", NS, "datasets", DATASET, "tags", "temp/x: #1")),
            ("POST", _path("namespaces", NS, "datasets", DATASET, "fields", FIELD, "tags", "pii")),
            ("POST", _path("namespaces", JOB_NS, "jobs", JOB, "tags", "nightly")),
            ("DELETE", _path("namespaces", NS, "datasets", DATASET, "tags", "temp/x: #1")),
        ]
        answers = [_call(stack, method, path) for method, path in writes]
        assert [status for status, _ in answers] == [200] * 5, answers
        assert answers[1][1]["tags"] == ["gold", "temp/x: #1"]  # the answer shows the write already
        assert answers[3][1]["tags"] == ["nightly"] and answers[4][1]["tags"] == ["gold"]
        # the five changes are on the tags topic, each keyed by its entity; one entity's in the order made
        by_key: dict[bytes, list[tuple[str, str, str, str | None]]] = {}
        named = set()
        for key, r in _topic_records(stack.settings, 5):
            by_key.setdefault(key, []).append((r["op"], r["entity"], r["tag"], r["field"]))
            named.add((r["namespace"], r["name"], r["source"].split()[0]))
        dataset_key = f"dataset:{NS}/{DATASET}".encode()
        assert by_key == {
            dataset_key: [("ADD", "DATASET", "gold", None), ("ADD", "DATASET", "temp/x: #1", None),
                          ("REMOVE", "DATASET", "temp/x: #1", None)],
            dataset_key + f"#{FIELD}".encode(): [("ADD", "FIELD", "PII", FIELD)],
            f"job:{JOB_NS}/{JOB}".encode(): [("ADD", "JOB", "nightly", None)],
        }  # fmt: skip
        assert named == {(NS, DATASET, "POST"), (JOB_NS, JOB, "POST"), (NS, DATASET, "DELETE")}
        wait_until(lambda: _stored(stack) == 5, what="the sink loaded the five changes")
        assert _shown(stack) == want
        assert {"name": "gold", "description": None} in _call(stack, "GET", "/api/v1/tags")[1]["tags"]

    with LocalStack(settings, api_port=free_port()) as stack:  # restarted: nothing acknowledged in this process
        assert _stored(stack) == 5 and _shown(stack) == want

    # a new database and sink group: the sink rebuilds every table, tag_changes too, from the topics
    uid = uuid.uuid4().hex[:8]
    replayed = replace(settings, clickhouse_database=f"tags_replay_{uid}", sink_group=f"sink-replay-{uid}")
    with LocalStack(replayed, api_port=free_port()) as stack:
        wait_until(lambda: _stored(stack) == 5, what="tag_changes rebuilt from the tags topic")

        def rebuilt() -> bool:
            try:
                return _shown(stack) == want
            except AssertionError:  # the runs not loaded yet: 404
                return False

        wait_until(rebuilt, what="the dataset and the job answered with their tags")
