"""The dbt harness runs the real dbt-ol and hands back what it emitted: checks of the facts that the tests
consuming these events rely on, read from the events themselves (and the project's files), in both of
dbt-ol's modes (see tests/realproducers/dbt.py for what each mode does and does not emit)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .dbt import JOB_NAMESPACE, MODES, PROJECT_DIR, DbtRun

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("UPRIVER_CACHE_DIR", ROOT / ".cache"))
FAILING_MODEL = "model.shop.country_revenue"
SOURCE_TABLE = "landed.payments"

Event = dict[str, Any]


@pytest.fixture
def artifacts_run(dbt_artifacts_run: DbtRun) -> DbtRun:
    return dbt_artifacts_run  # one run per session: tests/realproducers/fixtures.py


@pytest.fixture
def structured_run(dbt_structured_run: DbtRun) -> DbtRun:
    return dbt_structured_run


@pytest.fixture(params=MODES)
def dbt_run(request: pytest.FixtureRequest) -> DbtRun:
    name = "artifacts_run" if request.param == "artifacts" else "structured_run"
    run: DbtRun = request.getfixturevalue(name)
    return run


# -- reading the events ---------------------------------------------------------------------------
def job_type(event: Event) -> str | None:
    value = event["job"].get("facets", {}).get("jobType", {}).get("jobType")
    return value if isinstance(value, str) else None


def unique_id(event: Event) -> str | None:
    value = event["job"].get("facets", {}).get("dbt_node", {}).get("unique_id")
    return value if isinstance(value, str) else None


def datasets(event: Event) -> Iterator[tuple[str, Event]]:
    for side in ("inputs", "outputs"):
        for dataset in event.get(side) or []:
            yield side, dataset


def column_lineage_inputs(event: Event) -> Iterator[Event]:
    for _, dataset in datasets(event):
        for field in dataset.get("facets", {}).get("columnLineage", {}).get("fields", {}).values():
            yield from field.get("inputFields", [])


def assertions(event: Event) -> Iterator[Event]:
    for _, dataset in datasets(event):
        for where in ("facets", "inputFacets"):
            yield from dataset.get(where, {}).get("dataQualityAssertions", {}).get("assertions", [])


def model_names() -> dict[str, str]:
    """{model name: its layer folder} from the project's SQL files."""
    return {path.stem: path.parent.name for path in (PROJECT_DIR / "models").rglob("*.sql")}


def dataset_name(run: DbtRun, layer: str, table: str) -> str:
    # dbt-duckdb names the database after the file; the profile's schema is main, and +schema appends.
    return f"{run.duckdb_path.stem}.main_{layer}.{table}"


# -- both modes -----------------------------------------------------------------------------------
def test_four_invocations_each_wrapped_in_a_dbt_run(dbt_run: DbtRun) -> None:
    codes = [code for _, code in dbt_run.invocations]
    assert codes[:3] == [0, 0, 0] and codes[3] != 0, dbt_run.logs
    wrappers = [event["eventType"] for event in dbt_run.events if job_type(event) == "JOB"]
    assert wrappers == ["START", "COMPLETE"] * 3 + ["START", "FAIL"]
    assert dbt_run.events[0]["eventType"] == "START" and job_type(dbt_run.events[0]) == "JOB"


def test_events_are_openlineage_run_events_of_one_job_namespace(dbt_run: DbtRun) -> None:
    for event in dbt_run.events:
        assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
        assert event["eventTime"] and event["run"]["runId"] and event["job"]["name"]
        assert event["job"]["namespace"] == JOB_NAMESPACE
        assert event["producer"].startswith("https://github.com/OpenLineage/OpenLineage/tree/1.54.0/")
        assert event["schemaURL"].startswith("https://openlineage.io/spec/")


def test_each_run_starts_before_it_ends(dbt_run: DbtRun) -> None:
    by_run: dict[str, list[str]] = defaultdict(list)
    for event in dbt_run.events:
        by_run[event["run"]["runId"]].append(event["eventType"])
    for run_id, types in by_run.items():
        assert types[0] == "START", (run_id, types)
        assert types[-1] in {"COMPLETE", "FAIL", "ABORT"}, (run_id, types)


def test_every_dataset_is_in_the_duckdb_namespace(dbt_run: DbtRun) -> None:
    assert dbt_run.dataset_namespace.startswith("duckdb:///")
    seen = 0
    for event in dbt_run.events:
        for _, dataset in datasets(event):
            assert dataset["namespace"] == dbt_run.dataset_namespace
            seen += 1
        for field in column_lineage_inputs(event):
            assert field["namespace"] == dbt_run.dataset_namespace
    assert seen


def test_every_model_starts_and_completes_with_its_table_as_output(dbt_run: DbtRun) -> None:
    first_run = [event for event in dbt_run.events[: _end_of_invocation(dbt_run, 2)] if job_type(event) == "MODEL"]
    for model, layer in model_names().items():
        events = [event for event in first_run if unique_id(event) == f"model.shop.{model}"]
        assert [event["eventType"] for event in events] == ["START", "COMPLETE"], model
        outputs = [dataset["name"] for dataset in events[1]["outputs"]]
        assert outputs == [dataset_name(dbt_run, layer, model)]


def test_the_failing_model_fails_in_the_second_run(dbt_run: DbtRun) -> None:
    last_run = dbt_run.events[_end_of_invocation(dbt_run, 3) :]
    failed = [event for event in last_run if event["eventType"] == "FAIL" and job_type(event) == "MODEL"]
    assert [unique_id(event) for event in failed] == [FAILING_MODEL]
    completed = {
        unique_id(event) for event in last_run if event["eventType"] == "COMPLETE" and job_type(event) == "MODEL"
    }
    assert completed == {f"model.shop.{model}" for model in model_names()} - {FAILING_MODEL}


def test_the_source_table_is_read_and_never_written(dbt_run: DbtRun) -> None:
    name = f"{dbt_run.duckdb_path.stem}.{SOURCE_TABLE}"
    sides = {side for event in dbt_run.events for side, dataset in datasets(event) if dataset["name"] == name}
    assert sides == {"inputs"}


def test_some_jobs_have_only_inputs_or_only_outputs(dbt_run: DbtRun) -> None:
    one_sided = [
        event
        for event in dbt_run.events
        if job_type(event) != "JOB" and bool(event.get("inputs")) != bool(event.get("outputs"))
    ]
    assert one_sided


def test_data_tests_come_as_data_quality_assertions(dbt_run: DbtRun) -> None:
    found = [assertion for event in dbt_run.events for assertion in assertions(event)]
    assert {"not_null", "unique", "accepted_values", "relationships"} <= {a["assertion"] for a in found}
    # The accepted_values test of severity warn fails on purpose; every other one passes.
    failing = {(a["assertion"], a.get("column"), a.get("severity")) for a in found if not a["success"]}
    assert failing == {("accepted_values", "payment_method", "warn")}
    source = f"{dbt_run.duckdb_path.stem}.{SOURCE_TABLE}"
    tested = {
        d["name"] for e in dbt_run.events for _, d in datasets(e) if "dataQualityAssertions" in d.get("facets", {})
    }
    assert source in tested


def test_descriptions_come_as_documentation_and_schema_facets(dbt_run: DbtRun) -> None:
    outputs = [dataset for event in dbt_run.events for side, dataset in datasets(event) if side == "outputs"]
    documented = [
        dataset["facets"]["documentation"]["description"] for dataset in outputs if "documentation" in dataset["facets"]
    ]
    assert documented and all(documented)
    described = [
        field
        for dataset in outputs
        for field in dataset["facets"].get("schema", {}).get("fields", [])
        if field.get("description")
    ]
    assert described


# -- artifacts mode (dbt-ol's default) ------------------------------------------------------------
def test_artifacts_mode_outputs_carry_column_lineage(artifacts_run: DbtRun) -> None:
    lineage: dict[str, set[str]] = {}
    for event in artifacts_run.events:
        for side, dataset in datasets(event):
            facet = dataset.get("facets", {}).get("columnLineage")
            if side == "outputs" and facet:
                lineage[dataset["name"]] = {
                    field["name"] for fields in facet["fields"].values() for field in fields["inputFields"]
                }
    assert lineage
    # orders joins stg_orders and stg_payments; both show up in its column lineage.
    orders = lineage[dataset_name(artifacts_run, "marts", "orders")]
    assert {
        dataset_name(artifacts_run, "staging", "stg_orders"),
        dataset_name(artifacts_run, "staging", "stg_payments"),
    } <= orders


def test_artifacts_mode_names_seeds_only_inside_column_lineage(artifacts_run: DbtRun) -> None:
    seeds = {dataset_name(artifacts_run, "raw", path.stem) for path in (PROJECT_DIR / "seeds").glob("*.csv")}
    in_datasets = {dataset["name"] for event in artifacts_run.events for _, dataset in datasets(event)}
    in_lineage = {field["name"] for event in artifacts_run.events for field in column_lineage_inputs(event)}
    assert not seeds & in_datasets
    assert seeds <= in_lineage


def test_artifacts_mode_test_jobs_have_only_inputs(artifacts_run: DbtRun) -> None:
    tests = [event for event in artifacts_run.events if job_type(event) == "TEST"]
    assert tests
    assert all(event["inputs"] and not event["outputs"] for event in tests)


def test_artifacts_mode_fail_events_have_no_error_message(artifacts_run: DbtRun) -> None:
    # What dbt-ol 1.54.0 does in this mode: the reason a node failed is only in the logs.
    failed = [event for event in artifacts_run.events if event["eventType"] == "FAIL"]
    assert failed and not any("errorMessage" in event["run"]["facets"] for event in failed)
    assert "no_such_column" in artifacts_run.logs


# -- structured-logs mode (dbt-ol --consume-structured-logs) --------------------------------------
def test_structured_logs_mode_fail_events_carry_error_message(structured_run: DbtRun) -> None:
    failed = [event for event in structured_run.events if event["eventType"] == "FAIL"]
    messages = {
        job_type(event): event["run"]["facets"]["errorMessage"]["message"]
        for event in failed
        if "errorMessage" in event["run"]["facets"]
    }
    assert "country_revenue" in messages["MODEL"] and "no_such_column" in messages["MODEL"]
    assert "failed" in messages["JOB"]
    assert all(
        f["run"]["facets"]["errorMessage"]["programmingLanguage"] == "sql"
        for f in failed
        if "errorMessage" in f["run"]["facets"]
    )


def test_structured_logs_mode_seeds_are_jobs_with_only_outputs(structured_run: DbtRun) -> None:
    seeds = [event for event in structured_run.events if (unique_id(event) or "").startswith("seed.")]
    assert {unique_id(event) for event in seeds} == {
        f"seed.shop.{p.stem}" for p in (PROJECT_DIR / "seeds").glob("*.csv")
    }
    assert all(event["outputs"] and not event["inputs"] for event in seeds)


def test_structured_logs_mode_has_no_column_lineage(structured_run: DbtRun) -> None:
    # What dbt-ol 1.54.0 does in this mode: the manifest it reads while dbt runs has no compiled SQL.
    assert not any(True for event in structured_run.events for _ in column_lineage_inputs(event))


def _end_of_invocation(run: DbtRun, count: int) -> int:
    """Index just past the terminal wrapper event of the `count`-th invocation."""
    seen = 0
    for index, event in enumerate(run.events):
        if job_type(event) == "JOB" and event["eventType"] in {"COMPLETE", "FAIL"}:
            seen += 1
            if seen == count:
                return index + 1
    raise AssertionError(f"fewer than {count} invocations in the events")
