"""The simulator's AI workload through the real stack (Kafka, faust worker, sink, chDB), with the answers
checked against the simulator's own ground truth: upstream of deployments, impact of raw tables,
time travel before a retrain, run provenance, node attributes and column lineage."""

from __future__ import annotations

import itertools
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from stack_support import isolated_settings

from producers.truth import Truth
from upriver.local.stack import LocalStack
from upriver.local.workload import run_workload
from upriver.readside.lineage import LineageReader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def loaded(
    kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalStack, Truth]]:
    settings = isolated_settings(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("ai-lineage"), "ai")
    with LocalStack(settings, api_port=0) as stack:
        stack.wait_worker_ready()
        report, truth = run_workload(stack, events=4_000, seed=23, timeout=180)
        assert report.complete, report
        assert (report.missing_edges, report.unexpected_edges) == (0, 0)
        _wait_runs(stack, truth)
        yield stack, truth


def _wait_runs(stack: LocalStack, truth: Truth) -> None:
    """Edge rows may land before the last run revisions: wait until every run's final revision is in."""
    import time

    assert stack.storage is not None
    client, db = stack.storage.read_client, stack.storage.database
    deadline = time.monotonic() + 60
    want = len(truth.runs)
    while time.monotonic() < deadline:
        if int(client.query(f"SELECT uniqExact(run_id) FROM {db}.runs").result_rows[0][0]) >= want:
            return
        time.sleep(0.25)
    raise AssertionError("runs table never caught up")


def _reader(stack: LocalStack) -> LineageReader:
    assert stack.storage is not None
    return stack.storage.reader()


def _up(reader: LineageReader, node: str, as_of: int | None = None) -> set[str]:
    return set(reader.upstream(node, depth=30, as_of=as_of).nodes) - {node}


def test_upstream_of_deployments_matches_truth(loaded: tuple[LocalStack, Truth]) -> None:
    stack, truth = loaded
    reader = _reader(stack)
    up = _up(reader, truth.production_deployment)
    assert up == truth.upstream(truth.production_deployment)
    assert set(Truth.raw_tables("growth")) & up  # reaches the raw tables
    rag = _up(reader, truth.rag_deployment)
    assert rag == truth.upstream(truth.rag_deployment)
    assert Truth.prompt("support_bot") in rag and Truth.document_source("support_bot") in rag
    # the prompt version the deployment runs is the one the truth's newest deploy run read
    deploy_runs = [r for r in truth.runs.values() if r.job.endswith("/deploy_support_bot") and r.status != "FAIL"]
    newest = max(deploy_runs, key=lambda r: r.started_at)
    prompt_version = dict(newest.inputs)[Truth.prompt("support_bot")]
    body = reader.provenance(truth.rag_deployment).to_json()
    assert {"id": Truth.prompt("support_bot"), "version": prompt_version} in body["inputs"]


def test_impact_of_each_raw_table_lists_exactly_the_models_and_deployments(loaded: tuple[LocalStack, Truth]) -> None:
    stack, truth = loaded
    reader = _reader(stack)
    checked = 0
    for team in truth.teams:
        for raw in Truth.raw_tables(team):
            expected = truth.impact(raw)
            impact = reader.impact(raw).to_json()
            assert set(impact["models"]) == expected.get("model", set()), raw
            assert set(impact["deployments"]) == expected.get("deployment", set()), raw
            assert impact["total"] == sum(len(v) for v in expected.values())
            checked += bool(impact["models"])
    assert checked >= 3


def test_as_of_before_a_retrain_returns_the_old_training_set(loaded: tuple[LocalStack, Truth]) -> None:
    stack, truth = loaded
    reader = _reader(stack)
    changed = 0
    for team in truth.teams:
        model = Truth.model(team)
        runs = truth.training_runs(model)
        for (_, _, before), (started, _, after) in itertools.pairwise(runs):
            if before == after:
                continue
            old = set(reader.upstream(model, depth=1, as_of=started - 1).nodes) - {model}
            new = set(reader.upstream(model, depth=1, as_of=started).nodes) - {model}
            assert old == {s for s, d, _ in truth.valid_edges(started - 1) if d == model}, (model, started)
            assert new == {s for s, d, _ in truth.valid_edges(started) if d == model}, (model, started)
            assert old != new
            changed += 1
    assert changed >= 3
    # and the whole upstream at a time in the middle agrees with the truth
    middle = truth.training_runs(truth.production_model)[2][0]
    assert _up(reader, truth.production_model, as_of=middle) == truth.upstream(truth.production_model, as_of=middle)


def test_retired_artifacts_leave_the_current_graph(loaded: tuple[LocalStack, Truth]) -> None:
    stack, truth = loaded
    reader = _reader(stack)
    retired = [(node, at) for kind, node, at in truth.signals if kind == "RETIRE"]
    assert retired
    for node, at in retired:
        assert set(reader.downstream(node, as_of=at - 1).nodes) - {node} == truth.downstream(node, as_of=at - 1)
        assert set(reader.downstream(node).nodes) == {node}
        assert reader.node(node)["retired"] is True


def test_nodes_and_column_lineage(loaded: tuple[LocalStack, Truth]) -> None:
    stack, truth = loaded
    reader = _reader(stack)
    accounts = "dataset:warehouse/growth.raw_accounts"
    node = reader.node(accounts)
    expected = truth.nodes[accounts]
    assert node["owner"] == expected.owner == "team:growth"
    assert set(node["tags"]) == expected.tags == {"PII:email"}
    assert node["latest_version"] == expected.latest_version
    model = reader.node(truth.production_model)
    assert model["producing_job"] == truth.nodes[truth.production_model].producing_job
    feature = "feature:feast/growth.user_activity"
    col = set(reader.upstream(f"{feature}#email_domain").nodes)
    assert col == {f"{feature}#email_domain", "dataset:warehouse/growth.raw_accounts#email"}
    expected_cols = {(s, d, t) for s, d, t in truth.column_edges if d.startswith(feature)}
    found = {e for e in reader.upstream(f"{feature}#days_active").edges} | {
        e for e in reader.upstream(f"{feature}#email_domain").edges
    }
    assert found == expected_cols


def test_http_api_answers_the_same(loaded: tuple[LocalStack, Truth]) -> None:
    stack, truth = loaded
    assert stack.api is not None
    raw = Truth.raw_tables("growth")[0]
    query = urllib.parse.urlencode({"node": raw, "format": "csv"})
    with urllib.request.urlopen(f"{stack.api.url}/api/v1/impact?{query}", timeout=30) as resp:
        assert resp.headers.get_content_type() == "text/csv"
        rows = resp.read().decode().splitlines()
    assert rows[0] == "node_id,kind,level"
    assert {r.split(",")[0] for r in rows[1:]} == truth.downstream(raw)
    query = urllib.parse.urlencode({"from": raw, "to": truth.production_deployment})
    with urllib.request.urlopen(f"{stack.api.url}/api/v1/path?{query}", timeout=30) as resp:
        path = json.loads(resp.read())
    if truth.production_deployment in truth.downstream(raw):
        assert path["found"] and path["edges"][0]["src"] == raw
        assert path["edges"][-1]["dst"] == truth.production_deployment
