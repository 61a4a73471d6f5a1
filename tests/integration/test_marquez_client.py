"""The real Marquez Python client (marquez-python from PyPI, pinned in the dev extra), unchanged, pointed at
the stack's API URL with the stack's token as its api_key, over the workload of tests/marquez_support.py
(real producers' events and the compatibility scenarios, posted over HTTP): what it lists and fetches
matches what was sent.

The client (marquez_client/client.py, 0.50.0) puts names in paths with urllib's
`quote(name.encode('utf-8'), safe='')`: `/` -> %2F, `:` -> %3A, `#` -> %23, `%` -> %25, a space -> %20,
unicode as UTF-8 percent escapes; lists send `limit` (default 100) and `offset` (default 0). It has no
method for /lineage or /search (its only lineage calls are the column-lineage ones, used here), and its
`list_events` calls `/api/v1/events`, which Marquez itself no longer serves (OpenLineageResource has
/events/lineage), so neither is called here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from marquez_client import MarquezClient  # type: ignore[import-untyped]
from marquez_client.errors import APIError  # type: ignore[import-untyped]
from marquez_support import FRESH_DS_NS, FRESH_INPUT, FRESH_JOB, FRESH_JOB_NS, FRESH_OUTPUT, TOKEN, Truth, loaded_stack

from upriver.local.stack import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(
    kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalStack, Truth]]:
    with loaded_stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("mqclient"), "mqclient") as pair:
        yield pair


@pytest.fixture(scope="module")
def client(loaded: tuple[LocalStack, Truth]) -> MarquezClient:
    stack, _ = loaded
    assert stack.api is not None
    return MarquezClient(url=stack.api.url, api_key=TOKEN)


@pytest.fixture(scope="module")
def truth(loaded: tuple[LocalStack, Truth]) -> Truth:
    return loaded[1]


# a namespace with a '/' and ':' (postgres://…), one with '#' and a space, one from each producer family
NAMESPACES = ["postgres://postgres:5432", FRESH_JOB_NS, FRESH_DS_NS, "dbt-test-namespace", "flink_job_namespace"]


def test_list_and_get_namespaces(client: MarquezClient, truth: Truth) -> None:
    listed = client.list_namespaces(limit=1000)["namespaces"]
    assert {n["name"] for n in listed} == truth.namespaces
    for ns in NAMESPACES:
        assert client.get_namespace(ns)["name"] == ns
    with pytest.raises(APIError):
        client.get_namespace("no/such namespace")


def test_list_and_get_jobs(client: MarquezClient, truth: Truth) -> None:
    for ns in NAMESPACES:
        got = client.list_jobs(ns, limit=1000)
        assert {j["name"] for j in got["jobs"]} == truth.jobs_in(ns), ns
        assert got["totalCount"] == len(truth.jobs_in(ns))
    first = client.list_jobs("dbt-test-namespace", limit=10)["jobs"]
    rest = client.list_jobs("dbt-test-namespace", limit=1000, offset=10)["jobs"]
    assert len(first) == 10 and {j["name"] for j in first + rest} == truth.jobs_in("dbt-test-namespace")
    job = client.get_job(FRESH_JOB_NS, FRESH_JOB)
    assert (job["id"], job["namespace"], job["name"]) == ({"namespace": FRESH_JOB_NS, "name": FRESH_JOB},
                                                          FRESH_JOB_NS, FRESH_JOB)  # fmt: skip
    assert {(d["namespace"], d["name"]) for d in job["inputs"]} == {(FRESH_DS_NS, FRESH_INPUT)}
    assert {(d["namespace"], d["name"]) for d in job["outputs"]} == {(FRESH_DS_NS, FRESH_OUTPUT)}
    assert job["latestRun"]["id"] in truth.current_runs((FRESH_JOB_NS, FRESH_JOB))
    for ns, name in sorted(truth.jobs)[::9]:  # a spread over every producer
        got = client.get_job(ns, name)
        assert (got["namespace"], got["name"]) == (ns, name)
    with pytest.raises(APIError):
        client.get_job("dbt-test-namespace", "no such job")


def test_job_runs_and_each_run(client: MarquezClient, truth: Truth) -> None:
    for job in [(FRESH_JOB_NS, FRESH_JOB), ("flink_job_namespace", "flink_examples_stateful"),
                ("dbt-test-namespace", "dbt-run-jaffle_shop"), ("airflow", "gcs_hook.copy_task")]:  # fmt: skip
        runs = client.list_job_runs(*job, limit=1000)["runs"]
        assert {r["id"] for r in runs} == set(truth.jobs[job]), job
        for r in runs:
            want = truth.runs[r["id"]].state
            assert want is None or r["state"] == want, (job, r["id"], r["state"], want)
    fresh = truth.job_runs((FRESH_JOB_NS, FRESH_JOB))
    for run in fresh:
        got = client.get_job_run(run.id)
        assert (got["id"], got["state"]) == (run.id, run.state)
    assert {truth.runs[r].state for r in truth.jobs[(FRESH_JOB_NS, FRESH_JOB)]} == {"COMPLETED", "FAILED", "ABORTED"}
    with pytest.raises(APIError):
        client.get_job_run(str(uuid.uuid4()))


def test_list_and_get_datasets_and_versions(client: MarquezClient, truth: Truth) -> None:
    for ns in NAMESPACES:
        got = client.list_datasets(ns, limit=1000)
        assert {d["name"] for d in got["datasets"]} == truth.datasets_in(ns), ns
        assert got["totalCount"] == len(truth.datasets_in(ns))
    for name in (FRESH_INPUT, FRESH_OUTPUT):
        ds = client.get_dataset(FRESH_DS_NS, name)
        assert (ds["namespace"], ds["name"], ds["id"]) == (FRESH_DS_NS, name, {"namespace": FRESH_DS_NS, "name": name})
        assert [f["name"] for f in ds["fields"]] == truth.schema_fields((FRESH_DS_NS, name))
    versions = client.list_dataset_versions(FRESH_DS_NS, FRESH_OUTPUT, limit=1000)["versions"]
    assert versions and all((v["namespace"], v["name"]) == (FRESH_DS_NS, FRESH_OUTPUT) for v in versions)
    writers = {r.id for r in truth.job_runs((FRESH_JOB_NS, FRESH_JOB))}
    assert {v["createdByRun"]["id"] for v in versions if v.get("createdByRun")} <= writers
    one = client.get_dataset_version(FRESH_DS_NS, FRESH_OUTPUT, versions[0]["version"])
    assert (one["name"], one["version"]) == (FRESH_OUTPUT, versions[0]["version"])
    with pytest.raises(APIError):
        client.get_dataset("bigquery", "no/such dataset")


def test_column_lineage_by_dataset_field_and_job(client: MarquezClient) -> None:
    ns, src, dst = "bigquery", "mock-project.test.upload", "mock-project.test.upload_cp"
    want = {(f"datasetField:{ns}:{src}:{f}", f"datasetField:{ns}:{dst}:{f}") for f in "abc"}

    def edges(graph: dict[str, Any]) -> set[tuple[str, str]]:
        return {(e["origin"], e["destination"]) for n in graph["graph"] for e in n["inEdges"] + n["outEdges"]}

    assert want <= edges(client.get_column_lineage_by_dataset(ns, dst, depth=2))
    field = client.get_column_lineage_by_dataset_field(ns, dst, "a", depth=2)
    assert (f"datasetField:{ns}:{src}:a", f"datasetField:{ns}:{dst}:a") in edges(field)
    down = client.get_column_lineage_by_dataset_field(ns, src, "b", depth=2, with_downstream=True)
    assert f"datasetField:{ns}:{dst}:b" in {n["id"] for n in down["graph"]}
    # the fields of the datasets the job's latest run wrote (DatasetFieldDao.findFieldsUuidsByJob): BQ.copy
    # wrote upload_cp
    assert want <= edges(client.get_column_lineage_by_job("airflow", "BQ.copy", depth=2))


def _eventually(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 30) -> Any:
    """`fetch()` once `ok` holds (tag writes go through Kafka before reads see them), or its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_tags_and_sources(client: MarquezClient, truth: Truth) -> None:
    tag = "client/ünï tag"
    made = client.create_tag(tag, description="made by marquez-python")
    assert (made["name"], made["description"]) == (tag, "made by marquez-python")
    tagged = client.tag_dataset(FRESH_DS_NS, FRESH_INPUT, tag)
    assert (tagged["namespace"], tagged["name"]) == (FRESH_DS_NS, FRESH_INPUT) and tag in tagged["tags"]
    field = truth.schema_fields((FRESH_DS_NS, FRESH_INPUT))[0]  # type: ignore[index]
    on_field = client.tag_dataset_field(FRESH_DS_NS, FRESH_INPUT, field, "pii")
    assert "PII" in next(f["tags"] for f in on_field["fields"] if f["name"] == field)  # Marquez upper-cases
    later = _eventually(lambda: client.get_dataset(FRESH_DS_NS, FRESH_INPUT), lambda d: tag in d["tags"])
    assert tag in later["tags"]
    listed = _eventually(lambda: client.list_tags(limit=1000), lambda t: tag in {x["name"] for x in t["tags"]})
    assert {"name": tag, "description": "made by marquez-python"} in listed["tags"]
    sources = client.list_sources(limit=1000)["sources"]
    assert {s["name"] for s in sources} == truth.sources()
