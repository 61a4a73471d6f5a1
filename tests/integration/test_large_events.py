"""Events of several MB, under the documented 4 MiB limit but over Kafka's default 1,000,000-byte message
limit, go through every stage of the real stack (issue 13, item 7): HTTP (one event and a batch) and the
OpenLineage Kafka topic -> events topic -> worker -> runs and edges topics -> sink -> ClickHouse, with the
run's facets intact. Over the documented limit is 413; a topic created elsewhere with a smaller
`max.message.bytes` is 413 naming that limit (read at start-up, and again when Kafka refuses a message)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from stack_support import ready_stack

from schemas.codec import make_codec
from schemas.openlineage import MAX_EVENT_BYTES, MAX_MESSAGE_BYTES
from upriver.http.ingest import OpenLineageIngest
from upriver.http.server import ApiServer
from upriver.local.stack import LocalStack
from upriver.readside.lineage import NodeNotFound

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPARK_EVENT = FIXTURES / "compatibility" / "spark_dataproc_simple_producer_test" / "events" / "4.json"
JSON_HEADERS = {"Content-Type": "application/json"}


def _plan_node(i: int) -> dict[str, Any]:
    """One node of a Spark logical plan as the OpenLineage Spark integration serialises it."""
    attribute = {
        "class": "org.apache.spark.sql.catalyst.expressions.AttributeReference", "num-children": 0,
        "name": f"column_{i}", "dataType": "string", "nullable": True, "metadata": {},
        "exprId": {"product-class": "org.apache.spark.sql.catalyst.expressions.ExprId", "id": i,
                   "jvmId": "6b1d3b5c-9a4e-4d8e-a1b2-3c4d5e6f7a8b"},
        "qualifier": [],
    }  # fmt: skip
    return {"class": "org.apache.spark.sql.catalyst.plans.logical.Project", "num-children": 1,
            "projectList": [[attribute]], "child": 0}  # fmt: skip


def spark_event(size: int, job: str) -> tuple[str, bytes]:
    """(run id, compact JSON) of a real Spark COMPLETE event with a `spark.logicalPlan` run facet grown until
    the event is `size` bytes (within a few hundred)."""
    doc = json.loads(SPARK_EVENT.read_text())
    run_id = str(uuid.uuid4())
    doc["run"]["runId"] = run_id
    doc["eventTime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    doc["job"]["name"] = job
    doc["outputs"][0]["name"] = f"/user/hive/warehouse/{job}"
    doc["outputs"][0]["facets"].pop("symlinks", None)
    plan: list[dict[str, Any]] = []
    doc["run"]["facets"]["spark.logicalPlan"] = {
        "_producer": doc["producer"],
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/LogicalPlanRunFacet.json",  # hypothetical version
        "plan": plan,
    }

    def encoded() -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()

    step = len(json.dumps(_plan_node(10**6), separators=(",", ":"))) + 1
    plan.extend(_plan_node(i) for i in range((size - len(encoded())) // step))
    doc["run"]["facets"]["spark.logicalPlan"]["pad"] = "p" * (size - len(encoded()) - len(',"pad":""'))
    body = encoded()
    assert len(body) == size, (len(body), size)
    return run_id, body


def _post(url: str, data: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, headers=JSON_HEADERS, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _eventually(fetch: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fetch()
        except (NodeNotFound, AssertionError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with ready_stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("large"), "large") as s:
        yield s


def _assert_stored(stack: LocalStack, run_id: str, body: bytes) -> None:
    """The run (with its whole logical plan facet) and its edges are in the stack's ClickHouse."""
    assert stack.storage is not None
    reader = stack.storage.reader()
    sent = json.loads(body)["run"]["facets"]["spark.logicalPlan"]

    def stored() -> None:
        run = reader.run(run_id)
        assert run["status"] == "COMPLETE", run["status"]
        assert run["facets"]["spark.logicalPlan"] == sent
        assert [o["id"] for o in run["outputs"]] and [i["id"] for i in run["inputs"]]
        edges = stack.storage.read_client.query(  # type: ignore[union-attr]
            f"SELECT count() FROM {stack.storage.database}.edges WHERE run_id = {{r:String}}", parameters={"r": run_id}
        ).result_rows[0][0]
        assert edges > 0, "no edges yet"

    _eventually(stored)


@pytest.mark.parametrize("size", [1_500_000, 3_900_000])
def test_http_takes_events_up_to_the_documented_limit(stack: LocalStack, size: int) -> None:
    assert stack.api is not None
    run_id, body = spark_event(size, f"large_http_{size}")
    status, answer = _post(f"{stack.api.url}/api/v1/lineage", body)
    assert status == 201, answer
    _assert_stored(stack, run_id, body)


def test_http_batch_takes_an_event_just_under_the_limit(stack: LocalStack) -> None:
    """The batch path measures each event as sent (here compact JSON), not re-serialised with spaces."""
    assert stack.api is not None
    run_id, event = spark_event(MAX_EVENT_BYTES - 200, "large_batch")
    small_id, small = spark_event(20_000, "large_batch_small")
    status, answer = _post(f"{stack.api.url}/api/v1/lineage/batch", b"[" + event + b"," + small + b"]")
    assert (status, answer["successful"]) == (200, 2), answer
    _assert_stored(stack, run_id, event)
    _assert_stored(stack, small_id, small)


@pytest.mark.parametrize("size", [1_500_000, 3_900_000])
def test_the_openlineage_kafka_topic_takes_the_same_sizes(stack: LocalStack, size: int) -> None:
    run_id, body = spark_event(size, f"large_kafka_{size}")
    # the OpenLineage client's producer needs the same message.max.bytes (docs/openlineage.md, limits)
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap, "enable.idempotence": True,
                         "message.max.bytes": MAX_MESSAGE_BYTES})  # fmt: skip
    errors: list[str] = []
    producer.produce(stack.settings.topics.openlineage, value=body, key=run_id.encode(),
                     on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)  # fmt: skip
    assert producer.flush(60) == 0 and errors == [], errors
    _assert_stored(stack, run_id, body)


def test_over_the_documented_limit_is_413(stack: LocalStack) -> None:
    assert stack.api is not None
    _, body = spark_event(MAX_EVENT_BYTES + 1, "large_too_big")
    status, answer = _post(f"{stack.api.url}/api/v1/lineage", body)
    assert status == 413 and f"{MAX_EVENT_BYTES:,}" in answer["error"], answer


# ---- a topic created elsewhere with a smaller limit (no worker or sink needed: only the HTTP edge) --------


class _NoReader:
    pass


def _topic(kafka_bootstrap: str, limit: int) -> str:
    name = f"large-elsewhere-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = NewTopic(name, num_partitions=1, replication_factor=1, config={"max.message.bytes": str(limit)})
    admin.create_topics([topic])[name].result(30)
    return name


def _set_limit(kafka_bootstrap: str, topic: str, limit: int) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    entry = ConfigEntry("max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    time.sleep(1)  # the broker applies a dynamic topic config within milliseconds; leave it a margin


@pytest.fixture()
def edge(kafka_bootstrap: str) -> Iterator[Callable[[int], tuple[str, str]]]:
    """`edge(limit)`: an HTTP ingest server in front of a topic pre-created with max.message.bytes=limit."""
    servers: list[ApiServer] = []

    def make(limit: int) -> tuple[str, str]:
        topic = _topic(kafka_bootstrap, limit)
        ingest = OpenLineageIngest({"bootstrap.servers": kafka_bootstrap}, topic, make_codec("lineage_event"))
        servers.append(ApiServer(_NoReader(), "127.0.0.1", 0, ingest=ingest).start())  # type: ignore[arg-type]
        return servers[-1].url, topic

    yield make
    for server in servers:
        server.stop()


def test_a_topic_with_a_smaller_limit_answers_413_naming_it(
    kafka_bootstrap: str, edge: Callable[[int], tuple[str, str]]
) -> None:
    url, topic = edge(1_000_000)
    status, answer = _post(f"{url}/api/v1/lineage", spark_event(1_500_000, "elsewhere")[1])
    assert status == 413, answer
    assert "1,000,000" in answer["error"] and topic in answer["error"], answer
    status, answer = _post(f"{url}/api/v1/lineage/batch", b"[" + spark_event(1_500_000, "elsewhere")[1] + b"]")
    assert status == 400 and "1,000,000" in answer["failures"][0]["reason"], answer
    status, answer = _post(f"{url}/api/v1/lineage", spark_event(200_000, "elsewhere_small")[1])
    assert status == 201, answer  # smaller events still go through
    _set_limit(kafka_bootstrap, topic, 2_000_000)  # raised later: taken without a restart
    status, answer = _post(f"{url}/api/v1/lineage", spark_event(1_500_000, "elsewhere_raised")[1])
    assert status == 201, answer


def test_a_limit_lowered_after_start_up_is_413_naming_it(
    kafka_bootstrap: str, edge: Callable[[int], tuple[str, str]]
) -> None:
    """The limit read at start-up is stale: the broker's MSG_SIZE_TOO_LARGE is answered 413 with the new one."""
    url, topic = edge(MAX_MESSAGE_BYTES)
    status, answer = _post(f"{url}/api/v1/lineage", spark_event(200_000, "lowered_small")[1])
    assert status == 201, answer  # the ingest has read the topic's limit
    _set_limit(kafka_bootstrap, topic, 1_000_000)
    status, answer = _post(f"{url}/api/v1/lineage", spark_event(1_500_000, "lowered")[1])
    assert status == 413, answer
    assert "1,000,000" in answer["error"] and topic in answer["error"], answer
    status, answer = _post(f"{url}/api/v1/lineage", spark_event(200_000, "lowered_small_again")[1])
    assert status == 201, answer  # the producer is still usable after the refusal
