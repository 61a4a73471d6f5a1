"""OpenLineage through the real stack: the openlineage-python client (HTTP and Kafka transports, events
built with its own classes) and the corpus of real producers' events replayed through both ingest paths."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    dataset_version_dataset,
    job_type_job,
    ownership_dataset,
    symlinks_dataset,
    tags_dataset,
)
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport
from stack_support import isolated_settings

from processors.lineage import runs
from schemas.openlineage import OpenLineageError, decode, to_record
from upriver.local.stack import LocalStack, free_port

pytestmark = pytest.mark.integration

# a copy of ../shared/openlineage-corpus (Apache-2.0 fixtures; see its README), so CI on a clean clone has it
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus"
TOKEN = "test-token-not-logged"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"


def _stack(kafka_bootstrap: str, chdb_url: str, home: Path, name: str) -> LocalStack:
    settings = isolated_settings(kafka_bootstrap, chdb_url, home, name, api_token=TOKEN, health_enabled=False)
    return LocalStack(settings, api_port=free_port())


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with _stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("ol"), "ol") as s:
        s.wait_worker_ready()
        yield s


def _get(stack: LocalStack, path: str, **params: str) -> Any:
    assert stack.api is not None
    query = urllib.parse.urlencode(params)
    req = urllib.request.Request(f"{stack.api.url}{path}?{query}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _wait_upstream(stack: LocalStack, node: str, want: set[str], timeout: float = 60) -> set[str]:
    deadline = time.monotonic() + timeout
    got: set[str] = set()
    while time.monotonic() < deadline:
        try:
            got = {n["id"] for n in _get(stack, "/api/v1/upstream", node=node, depth="5")["nodes"]} - {node}
        except urllib.error.HTTPError:
            got = set()
        if want <= got:
            return got
        time.sleep(0.5)
    return got


def _eventually(fetch: Callable[[], Any], timeout: float = 60) -> Any:
    """`fetch()` once it stops answering 404 (the sink loads each table in its own batches)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fetch()
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def _client_events(job: str) -> list[RunEvent]:
    """A START/COMPLETE pair built with the client's own classes: a table read by path (with its TABLE
    symlink), a versioned output with an owner, a PII tag and column lineage."""
    run = Run(runId=str(uuid.uuid4()))
    ns = f"spark-{job}"
    source = InputDataset(
        namespace="s3://lake",
        name=f"/warehouse/{job}/orders",
        facets={
            "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[
                    symlinks_dataset.Identifier(namespace="hive://metastore", name=f"{job}.orders", type="TABLE")
                ]
            )
        },
    )
    target = OutputDataset(
        namespace="hive://metastore",
        name=f"{job}.daily_revenue",
        facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="7"),
            "ownership": ownership_dataset.OwnershipDatasetFacet(owners=[ownership_dataset.Owner(name="team:sales")]),
            "tags": tags_dataset.TagsDatasetFacet(
                tags=[tags_dataset.TagsDatasetFacetFields(key="PII", value="true", field="email")]
            ),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={
                    "revenue": column_lineage_dataset.Fields(
                        inputFields=[
                            column_lineage_dataset.InputField(
                                namespace="s3://lake", name=f"/warehouse/{job}/orders", field="amount"
                            )
                        ]
                    )
                }
            ),
        },
    )
    jobfacets = {"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="SPARK", jobType="JOB")}
    now = datetime.now(UTC).isoformat()
    return [
        RunEvent(
            eventType=RunState.START,
            eventTime=now,
            run=run,
            job=Job(namespace=ns, name=job, facets=jobfacets),
            producer=PRODUCER,
            inputs=[source],
            outputs=[],
        ),
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=now,
            run=run,
            job=Job(namespace=ns, name=job),
            producer=PRODUCER,
            inputs=[],
            outputs=[target],
        ),
    ]


def _check_client_lineage(stack: LocalStack, job: str) -> None:
    target = f"dataset:hive://metastore/{job}.daily_revenue"
    source = f"dataset:hive://metastore/{job}.orders"  # the symlink, not the path
    assert _wait_upstream(stack, target, {source}) >= {source}
    deadline = time.monotonic() + 60
    node = _eventually(lambda: _get(stack, "/api/v1/node", node=target))  # runs land apart from edges
    while node["owner"] is None and time.monotonic() < deadline:  # the node's row may land before its facets
        time.sleep(0.5)
        node = _get(stack, "/api/v1/node", node=target)
    assert node["owner"] == "team:sales" and "PII:email" in node["tags"]
    assert [v["version"] for v in node["versions"]] == ["7"]
    columns = _get(stack, "/api/v1/upstream", node=f"{target}#revenue", depth="2")["nodes"]
    assert f"{source}#amount" in {n["id"] for n in columns}
    marquez = _get(stack, "/api/v1/lineage", nodeId=f"dataset:hive://metastore:{job}.daily_revenue", depth="3")
    ids = {n["id"] for n in marquez["graph"]}
    # Marquez names a dataset as its event sent it, the path; its TABLE symlink only points at it
    assert {f"dataset:s3://lake:/warehouse/{job}/orders", f"job:spark-{job}:{job}"} <= ids
    assert f"dataset:hive://metastore:{job}.orders" not in ids
    job_node = next(n for n in marquez["graph"] if n["type"] == "JOB")
    assert job_node["inEdges"] and job_node["outEdges"]


def test_the_openlineage_python_client_over_http(stack: LocalStack) -> None:
    assert stack.api is not None
    config = HttpConfig.from_dict(
        {"url": stack.api.url, "auth": {"type": "api_key", "apiKey": TOKEN}, "compression": "gzip"}
    )
    client = OpenLineageClient(transport=HttpTransport(config))
    for event in _client_events("http_job"):
        client.emit(event)
    _check_client_lineage(stack, "http_job")


def test_the_openlineage_python_client_over_kafka(stack: LocalStack) -> None:
    config = KafkaConfig(
        config={"bootstrap.servers": stack.settings.kafka_bootstrap},
        topic=stack.settings.topics.openlineage,
        flush=True,
    )
    client = OpenLineageClient(transport=KafkaTransport(config))
    for event in _client_events("kafka_job"):
        client.emit(event)
    _check_client_lineage(stack, "kafka_job")


def test_a_wrong_token_is_refused_and_never_echoed(stack: LocalStack) -> None:
    assert stack.api is not None
    req = urllib.request.Request(f"{stack.api.url}/api/v1/lineage", data=b"{}", method="POST",
                                 headers={"Authorization": "Bearer nope"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401 and b"nope" not in err.value.read()
    assert TOKEN not in (stack.log_dir / "worker.log").read_text()


# ---- the corpus through both paths ------------------------------------------------------------------


def _corpus() -> list[tuple[str, int, bytes]]:
    return [
        (path.name, i, line.encode())
        for path in sorted(CORPUS.glob("*.ndjson"))
        for i, line in enumerate(path.read_text().splitlines())
    ]


def _expected(lines: list[tuple[str, int, bytes]]) -> tuple[set[tuple[str, str, str]], set[str], list[str]]:
    """Edges (src, dst, type) of the valid events' merged runs, their run ids, and the refusals' reasons."""
    records, refused = [], []
    for _, _, raw in lines:
        try:
            records.append(to_record(decode(raw)))
        except OpenLineageError as exc:
            refused.append(str(exc))
    states = runs.merge_all(records)
    edges = {(e["src"], e["dst"], e["edge_type"]) for s in states.values() for e in runs.edges(s, 0)}
    return edges, set(states), refused


def _stored(stack: LocalStack) -> tuple[set[tuple[str, str, str]], set[str], list[str]]:
    assert stack.storage is not None
    client, db = stack.storage.read_client, stack.storage.database
    edges = {tuple(r) for r in client.query(f"SELECT DISTINCT src, dst, edge_type FROM {db}.edges").result_rows}
    run_ids = {r[0] for r in client.query(f"SELECT DISTINCT run_id FROM {db}.runs").result_rows}
    reasons = [r[0] for r in client.query(f"SELECT reason FROM {db}.dead_letters ORDER BY reason").result_rows]
    return edges, run_ids, reasons  # type: ignore[return-value]


def _refused(raw: bytes) -> bool:
    try:
        to_record(decode(raw))
    except OpenLineageError:
        return True
    return False


def _raw_payloads(stack: LocalStack, want: int) -> set[bytes]:
    """The distinct payloads of the stack's `lineage_events`, once at least `want` of them are stored."""
    assert stack.storage is not None
    client, db = stack.storage.read_client, stack.storage.database
    sql, deadline, got = f"SELECT DISTINCT payload FROM {db}.lineage_events", time.monotonic() + 60, set()
    while time.monotonic() < deadline:
        got = {str(p).encode() for (p,) in client.query(sql).result_rows}
        if len(got) >= want:
            break
        time.sleep(0.5)
    return got


def _wait_stored(stack: LocalStack, edges: int, run_ids: int, letters: int) -> tuple[Any, ...]:
    deadline = time.monotonic() + 90
    got: tuple[Any, ...] = (set(), set(), [])
    while time.monotonic() < deadline:
        got = _stored(stack)
        if len(got[0]) >= edges and len(got[1]) >= run_ids and len(got[2]) >= letters:
            time.sleep(1)  # anything extra would land now
            return _stored(stack)
        time.sleep(0.5)
    return got


def test_the_corpus_through_http_and_through_kafka_gives_the_same_answers(
    stack: LocalStack, kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lines = _corpus()
    want_edges, want_runs, want_refused = _expected(lines)
    assert len(lines) == 406 and len(want_refused) == 1 and len(want_edges) >= 40

    # HTTP: one file through /batch, the rest one event a request
    with _stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("ol-http"), "olhttp") as http_stack:
        http_stack.wait_worker_ready()
        assert http_stack.api is not None
        refused = []
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        dbt = [raw for name, _, raw in lines if name.startswith("dbt")]  # as dbt-ol wrote them
        req = urllib.request.Request(f"{http_stack.api.url}/api/v1/lineage/batch", data=b"[" + b",\n".join(dbt) + b"]",
                                     headers=headers, method="POST")  # fmt: skip
        with urllib.request.urlopen(req, timeout=60) as resp:
            summary = json.loads(resp.read())
        assert (resp.status, summary["received"], summary["successful"], summary["failed"]) == (200, 380, 380, 0)
        for name, _, raw in lines:
            if name.startswith("dbt"):
                continue
            req = urllib.request.Request(f"{http_stack.api.url}/api/v1/lineage", data=raw, headers=headers,
                                         method="POST")  # fmt: skip
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    assert resp.status == 201
            except urllib.error.HTTPError as exc:
                assert exc.code == 400
                refused.append(json.loads(exc.read())["error"])
        assert refused == want_refused
        via_http = _wait_stored(http_stack, len(want_edges), len(want_runs), 0)
        # every accepted event's raw copy is the text its producer wrote, a batch's elements too
        accepted = {raw for _, _, raw in lines} - {raw for _, _, raw in lines if _refused(raw)}
        assert _raw_payloads(http_stack, len(accepted)) == accepted

    # Kafka: every line as the openlineage kafka transport writes it (plain JSON values), the bad one too
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for _, _, raw in lines:
        producer.produce(stack.settings.topics.openlineage, value=raw, key=b"run:corpus")
    assert producer.flush(30) == 0
    via_kafka = _wait_stored(stack, len(want_edges), len(want_runs), 1)

    edges_http, runs_http, _ = via_http
    edges_kafka, runs_kafka, letters = via_kafka
    client_runs = {r for r in runs_kafka if r not in want_runs}  # the client tests' runs share this stack
    assert edges_http == want_edges, "every valid event's lineage is queryable (HTTP)"
    client_jobs = ("http_job", "kafka_job")
    assert {e for e in edges_kafka if not any(j in e[0] or j in e[1] for j in client_jobs)} == want_edges
    assert runs_http == want_runs and runs_kafka - client_runs == want_runs
    assert letters == [f"OpenLineage: {want_refused[0]}"]


def test_marquez_lineage_for_a_node_without_edges_and_for_an_unknown_one(stack: LocalStack) -> None:
    # the python-client corpus event reads and writes the same table: no dataset edge, but its job is a
    # JOB vertex that reads and writes it, as Marquez draws it (the corpus test above sent it via Kafka)
    node = "dataset:my-datasource-namespace:instance.schema.table"
    job = "job:my-scheduler-namespace:myjob.mytask"
    graph = _eventually(lambda: _get(stack, "/api/v1/lineage", nodeId=node))["graph"]
    both = [{"origin": job, "destination": node}], [{"origin": node, "destination": job}]
    assert [(v["id"], v["type"], v["inEdges"], v["outEdges"]) for v in graph] == [
        (node, "DATASET", *both),
        (job, "JOB", both[1], both[0]),
    ]
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(stack, "/api/v1/lineage", nodeId="dataset:nowhere:nothing")
    # Marquez's DatasetNotFoundException, in Dropwizard's ErrorMessage shape
    assert err.value.code == 404
    assert json.loads(err.value.read()) == {"code": 404, "message": "Dataset 'nothing' not found."}


# ---- raw events as received (issue 14) ----------------------------------------------------------------


def _raw_event(run: str, job: str, at: datetime, etype: str) -> dict[str, Any]:
    return {"eventType": etype, "eventTime": at.isoformat().replace("+00:00", "Z"), "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
            "run": {"runId": run, "facets": {}}, "job": {"namespace": "raw-events", "name": job},
            "inputs": [{"namespace": "s3://raw", "name": f"{job}/in ü"}], "outputs": []}  # fmt: skip


def _post(stack: LocalStack, path: str, data: bytes, **headers: str) -> int:
    assert stack.api is not None
    req = urllib.request.Request(f"{stack.api.url}{path}", data=data, method="POST", headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", **headers})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def _worker_counts(stack: LocalStack) -> dict[str, float]:
    samples = stack.worker_metrics()
    names = {
        "events": "upriver_processor_events_total",
        "duplicates": "upriver_processor_duplicates_dropped_total",
        "mapped_by_api": 'upriver_processor_openlineage_events_total{result="mapped_by_api"}',
        "translated": 'upriver_processor_openlineage_events_total{result="accepted"}',
        "in_place": 'upriver_processor_openlineage_routed_total{route="in_place"}',
        "sent_on": 'upriver_processor_openlineage_routed_total{route="events_topic"}',
    }
    return {key: samples.get(name, 0.0) for key, name in names.items()}


def test_raw_events_are_kept_as_received_and_each_event_is_mapped_once(stack: LocalStack) -> None:
    """Events in over HTTP (one POST, one gzipped, a batch of two) and through the Kafka transport's topic:
    `/api/v1/events/lineage` answers each exactly as it was sent, and the worker mapped the Kafka ones and
    left the HTTP ones' raw copies alone: each event handled once, no duplicate (the HTTP ones from the events
    topic, the Kafka ones where the one worker read them)."""
    t0 = datetime.now(UTC) + timedelta(seconds=1)  # after every event the module's other tests sent
    docs = [_raw_event(str(uuid.uuid4()), f"raw_{i}", t0 + timedelta(seconds=i, microseconds=i), etype)
            for i, etype in enumerate(["START", "COMPLETE", "START", "FAIL", "START", "ABORT"])]  # fmt: skip
    sent = [json.dumps(d, indent=2, ensure_ascii=False).encode() for d in docs]  # spaces, raw UTF-8: kept so
    before = _worker_counts(stack)
    assert _post(stack, "/api/v1/lineage", sent[0]) == 201
    assert _post(stack, "/api/v1/lineage", gzip.compress(sent[1]), **{"Content-Encoding": "gzip"}) == 201
    assert _post(stack, "/api/v1/lineage/batch", b"[\n" + sent[2] + b" ,\n" + sent[3] + b"\n]") == 200  # each kept
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap})
    for raw in sent[4:]:
        producer.produce(stack.settings.topics.openlineage, value=raw, key=b"run:raw-events")
    assert producer.flush(30) == 0
    want = sent  # what Marquez's route must answer: every event as it was sent, a batch's elements too

    assert stack.api is not None
    query = urllib.parse.urlencode({"after": t0.isoformat(), "sortDirection": "asc"})
    url = f"{stack.api.url}/api/v1/events/lineage?{query}"
    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})) as r:
            text = r.read().decode()
        if json.loads(text)["totalCount"] >= len(want):
            break
        time.sleep(0.5)
    assert text == '{"events": [' + ", ".join(w.decode() for w in want) + f'], "totalCount": {len(want)}}}'

    deadline, after = time.monotonic() + 60, before
    while time.monotonic() < deadline:
        after = _worker_counts(stack)
        handled = after["events"] + after["in_place"] - before["events"] - before["in_place"]
        if handled >= len(want) and after["mapped_by_api"] - before["mapped_by_api"] >= 4:
            break
        time.sleep(0.5)
    time.sleep(2)  # a second mapping of an HTTP copy would land by now
    after = _worker_counts(stack)
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {"events": 4, "duplicates": 0, "mapped_by_api": 4, "translated": 2, "in_place": 2, "sent_on": 0}

    assert stack.storage is not None
    client, db = stack.storage.read_client, stack.storage.database
    ids = [d["run"]["runId"] for d in docs]
    sql = f"SELECT run_id, status FROM {db}.runs FINAL WHERE has({{ids:Array(String)}}, run_id) ORDER BY run_id"
    deadline, stored = time.monotonic() + 60, []
    while time.monotonic() < deadline and len(stored) < len(ids):
        stored = client.query(sql, parameters={"ids": ids}).result_rows
        time.sleep(0.5)
    assert sorted((r[0], r[1]) for r in stored) == sorted((d["run"]["runId"], d["eventType"]) for d in docs)
    hourly = _get(stack, "/api/v1/stats/lineage-events", period="DAY")
    assert len(hourly) == 24 and sum(h["start"] for h in hourly) >= 3 and sum(h["abort"] for h in hourly) >= 1
