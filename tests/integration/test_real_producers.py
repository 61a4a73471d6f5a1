"""Real OpenLineage producers through the real stack: dbt-ol on dbt-duckdb (both of its modes) and a
PySpark job under the OpenLineage Spark listener (tests/realproducers), their events sent as they emitted
them to the HTTP endpoint, then every dataset, job, run, edge and column edge checked through the HTTP API
against what the spec says those events mean (tests/ol_truth.py), never against Upriver's own output."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ol_check import Http, converged
from ol_truth import expected
from realproducers.airflow import AirflowRun
from realproducers.dbt import DbtRun
from realproducers.spark import SparkRun
from stack_support import isolated_settings

from schemas.identity import node_id
from upriver.local.stack import LocalStack, free_port

pytestmark = pytest.mark.integration


def _read(stack: LocalStack) -> Http:
    assert stack.api is not None
    return Http(stack.api.url, TOKEN)


TOKEN = "real-producers-token"
Event = dict[str, Any]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@pytest.fixture(scope="module")
def errors() -> Iterator[_Errors]:
    handler = _Errors()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory, errors: _Errors
) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("real")
    settings = isolated_settings(kafka_bootstrap, chdb_url, home, "real", api_token=TOKEN, health_enabled=False)
    with LocalStack(settings, api_port=free_port()) as s:
        s.wait_worker_ready()
        yield s


def _no_errors_logged(stack: LocalStack, errors: _Errors) -> None:
    worker_log = (stack.log_dir / "worker.log").read_text(errors="replace")
    assert [line for line in worker_log.splitlines() if " ERROR " in line or line.startswith("ERROR")] == []
    assert errors.records == []


def _outputs_of(events: list[Event], state: str) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for e in events:
        if e.get("eventType") == state:
            out.setdefault(e["run"]["runId"], set()).update((d["namespace"], d["name"]) for d in e.get("outputs") or [])
    return out


def _raw_events_missing(stack: LocalStack, events: list[Event], timeout: float = 60) -> list[Event]:
    """The producer's events Marquez's `/api/v1/events/lineage` does not (yet, after `timeout`) answer exactly as
    they were sent (the raw copies the HTTP ingest wrote to the OpenLineage topic, loaded by the sink)."""
    assert stack.api is not None
    deadline = time.monotonic() + timeout
    while True:
        stored = Http(stack.api.url, TOKEN).get("/api/v1/events/lineage", limit="100000") or {}
        held = [json.dumps(e, sort_keys=True) for e in stored.get("events", [])]
        missing = [e for e in events if json.dumps(e, sort_keys=True) not in held]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


def _node(stack: LocalStack, nid: str) -> Any:
    assert stack.api is not None
    return Http(stack.api.url, TOKEN).get("/api/v1/node", node=nid)


@pytest.mark.parametrize("mode", [pytest.param("artifacts", marks=pytest.mark.slow), "structured-logs"])
def test_dbt_ol_lineage_is_exact(mode: str, request: pytest.FixtureRequest, stack: LocalStack, errors: _Errors) -> None:
    run: DbtRun = request.getfixturevalue("dbt_artifacts_run" if mode == "artifacts" else "dbt_structured_run")
    _read(stack).send(run.events)
    assert converged(_read(stack), expected(run.events)) == []
    # a FAIL run never produces: the dataset its model writes names no failed run as its producer
    failed = {r for e in run.events if e.get("eventType") == "FAIL" for r in [e["run"]["runId"]]}
    assert failed, "the project's second run makes one model fail"
    for written in _outputs_of(run.events, "COMPLETE").values():
        for ns, name in written:
            node = _node(stack, node_id("DATASET", ns, name))
            assert node["producing_run"] not in failed
            attempts = {v["run_id"]: v["produced"] for v in node["versions"]}
            assert not any(attempts.get(r) for r in failed)
    # facets the producer sent are visible on the node: documentation, test results
    sent: dict[tuple[str, str], set[str]] = {}
    for e in run.events:
        for d in [*(e.get("inputs") or []), *(e.get("outputs") or [])]:
            facets = {**(d.get("facets") or {}), **(d.get("inputFacets") or {}), **(d.get("outputFacets") or {})}
            sent.setdefault((d["namespace"], d["name"]), set()).update(facets)
    for (ns, name), names in sent.items():
        shown = set(_node(stack, node_id("DATASET", ns, name))["facets"])
        assert names - {"symlinks"} <= shown, (ns, name)
    assert _raw_events_missing(stack, run.events) == []  # kept as received, names and all
    _no_errors_logged(stack, errors)


def test_spark_listener_lineage_is_exact(spark_run: SparkRun, stack: LocalStack, errors: _Errors) -> None:
    _read(stack).send(spark_run.events)
    want = expected(spark_run.events)
    assert want["symlinks"], "the job writes and reads a catalog table"
    assert converged(_read(stack), want) == []
    # (check() also resolves every symlink to the node its path names: one node under both names)
    assert _raw_events_missing(stack, spark_run.events) == []  # kept as received, names and all
    _no_errors_logged(stack, errors)


def test_the_node_endpoint_names_every_name_a_producer_used(spark_run: SparkRun, stack: LocalStack) -> None:
    want = expected(spark_run.events)
    for link in want["symlinks"]:
        node = _node(stack, node_id("DATASET", link["namespace"], link["name"]))
        names = {(node["namespace"], node["name"]), *((a["namespace"], a["name"]) for a in node["aliases"])}
        assert {(link["namespace"], link["name"]), *((a["namespace"], a["name"]) for a in link["aliases"])} <= names


@pytest.mark.producers
def test_airflow_provider_lineage_is_exact(airflow_session_run: AirflowRun, stack: LocalStack, errors: _Errors) -> None:
    """`make test-producers`: Airflow's OpenLineage provider (tasks with inlets/outlets, a task that only
    publishes, a task failing in a second DAG run, the DAG run as every task's parent)."""
    _read(stack).send(airflow_session_run.events)
    want = expected(airflow_session_run.events)
    assert any(r["final_state"] == "FAIL" and r["error_message"] for r in want["runs"])
    assert converged(_read(stack), want) == []
    _no_errors_logged(stack, errors)
