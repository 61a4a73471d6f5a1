"""The Airflow harness runs a real DAG under Airflow's OpenLineage provider and hands back what it emitted:
checks of the facts that the tests consuming these events rely on, each read from the events themselves (and
the files the tasks wrote), never from counts copied out of one run. See tests/realproducers/airflow.py for
what Airflow emits under `airflow dags test`, and airflow_dags/shop_dag.py for the DAG.

Airflow is large, so these run in `make test-producers` (`pytest -m producers`), not in the main suite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .airflow import DAG_ID, DATASET_NAMESPACE, JOB_NAMESPACE, OPENLINEAGE_PROVIDER_VERSION, AirflowRun

pytestmark = [pytest.mark.producers, pytest.mark.integration]

FAILING_TASK = "revenue_by_country"
TERMINAL = {"COMPLETE", "FAIL", "ABORT"}

Event = dict[str, Any]


@pytest.fixture
def airflow_run(airflow_session_run: AirflowRun) -> AirflowRun:
    return airflow_session_run  # one run per session: tests/realproducers/fixtures.py


# -- reading the events ---------------------------------------------------------------------------
def job_type(event: Event) -> str | None:
    value = event["job"].get("facets", {}).get("jobType", {}).get("jobType")
    return value if isinstance(value, str) else None


def task_id(event: Event) -> str:
    assert event["job"]["name"].startswith(f"{DAG_ID}."), event["job"]["name"]
    name: str = event["job"]["name"][len(DAG_ID) + 1 :]
    return name


def datasets(event: Event) -> Iterator[tuple[str, Event]]:
    for side in ("inputs", "outputs"):
        for dataset in event.get(side) or []:
            yield side, dataset


def names(event: Event, side: str) -> set[str]:
    return {dataset["name"] for dataset in event.get(side) or []}


def dag_runs(run: AirflowRun) -> list[list[Event]]:
    """The events of each `dags test`, in order: each ends with the DAG run's own (terminal) event."""
    groups: list[list[Event]] = [[]]
    for event in run.events:
        groups[-1].append(event)
        if job_type(event) == "DAG":
            groups.append([])
    assert groups[-1] == [], "events after the last DAG run's event"
    return groups[:-1]


def task_states(dag_event: Event) -> dict[str, str]:
    """{task id: final state} as the DAG run's event reports it (its airflowState run facet)."""
    states: dict[str, str] = dag_event["run"]["facets"]["airflowState"]["tasksState"]
    return states


def task_events(events: list[Event]) -> dict[str, list[Event]]:
    by_task: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if job_type(event) == "TASK":
            by_task[task_id(event)].append(event)
    return by_task


# -- the invocations and the events' envelope -----------------------------------------------------
def test_migrate_and_the_first_dag_run_succeed_and_the_second_fails(airflow_run: AirflowRun) -> None:
    codes = [code for _, code in airflow_run.invocations]
    assert codes[:2] == [0, 0] and codes[2] != 0, airflow_run.logs
    assert len(dag_runs(airflow_run)) == len([c for c, _ in airflow_run.invocations if "test" in c])
    assert [event["eventType"] for run in dag_runs(airflow_run) for event in run[-1:]] == ["COMPLETE", "FAIL"]


def test_events_are_openlineage_run_events_of_one_job_namespace(airflow_run: AirflowRun) -> None:
    assert airflow_run.events
    for event in airflow_run.events:
        assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
        assert event["eventTime"] and event["run"]["runId"] and event["job"]["name"]
        assert event["job"]["namespace"] == JOB_NAMESPACE
        assert (
            event["producer"]
            == f"https://github.com/apache/airflow/tree/providers-openlineage/{OPENLINEAGE_PROVIDER_VERSION}"
        )
        assert event["schemaURL"].startswith("https://openlineage.io/spec/")
        assert event["job"]["facets"]["jobType"]["integration"] == "AIRFLOW"
        assert job_type(event) in {"DAG", "TASK"}
        engine = event["run"]["facets"]["processing_engine"]
        assert engine["name"] == "Airflow" and engine["openlineageAdapterVersion"] == OPENLINEAGE_PROVIDER_VERSION


# -- task runs ------------------------------------------------------------------------------------
def test_every_task_of_the_first_dag_run_starts_and_completes(airflow_run: AirflowRun) -> None:
    events = dag_runs(airflow_run)[0]
    states = task_states(events[-1])
    assert states and set(states.values()) == {"success"}
    by_task = task_events(events)
    assert set(by_task) == set(states)
    for task, task_run in by_task.items():
        assert [event["eventType"] for event in task_run] == ["START", "COMPLETE"], task
        assert len({event["run"]["runId"] for event in task_run}) == 1, task


def test_the_failing_task_fails_in_the_second_dag_run_with_an_error_message(airflow_run: AirflowRun) -> None:
    events = dag_runs(airflow_run)[1]
    states = task_states(events[-1])
    assert states[FAILING_TASK] == "failed"
    by_task = task_events(events)
    assert set(by_task) == set(states)
    for task, task_run in by_task.items():
        expected = "FAIL" if states[task] == "failed" else "COMPLETE"
        assert [event["eventType"] for event in task_run] == ["START", expected], task
    failed = by_task[FAILING_TASK][-1]
    error = failed["run"]["facets"]["errorMessage"]
    assert "fail_revenue" in error["message"]
    assert error["programmingLanguage"] == "python"
    assert "ValueError" in error["stackTrace"] and error["message"] in error["stackTrace"]
    assert not any("errorMessage" in event["run"]["facets"] for event in events if event["eventType"] != "FAIL")


def test_each_task_run_has_a_run_id_of_its_own(airflow_run: AirflowRun) -> None:
    run_ids: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for number, events in enumerate(dag_runs(airflow_run)):
        for event in events:
            run_ids[event["run"]["runId"]].add((number, event["job"]["name"]))
    assert all(len(owners) == 1 for owners in run_ids.values()), run_ids


def test_tasks_carry_their_source_code(airflow_run: AirflowRun) -> None:
    languages: set[str] = set()
    for event in airflow_run.events:
        if job_type(event) != "TASK":
            continue
        source = event["job"]["facets"]["sourceCode"]
        languages.add(source["language"])
        operator = event["run"]["facets"]["airflow"]["task"]["operator_class"]
        if operator == "PythonOperator":
            # The DAG names each Python callable after its task.
            assert source["language"] == "python" and f"def {task_id(event)}(" in source["sourceCode"]
        elif operator == "BashOperator":
            assert source["language"] == "bash"
    assert languages == {"python", "bash"}


# -- the DAG run ----------------------------------------------------------------------------------
def test_the_dag_run_parents_every_task_run(airflow_run: AirflowRun) -> None:
    for events in dag_runs(airflow_run):
        dag_event = events[-1]
        assert dag_event["job"]["name"] == DAG_ID and "parent" not in dag_event["run"]["facets"]
        parent = {"namespace": JOB_NAMESPACE, "name": DAG_ID, "runId": dag_event["run"]["runId"]}
        tasks = [event for event in events if job_type(event) == "TASK"]
        assert tasks and len(tasks) == len(events) - 1
        for event in tasks:
            facet = event["run"]["facets"]["parent"]
            for link in (facet, facet["root"]):
                assert {**link["job"], "runId": link["run"]["runId"]} == {**parent, "facets": {}}, event["job"]
            assert (
                event["run"]["facets"]["airflow"]["dagRun"]["run_id"]
                == (dag_event["run"]["facets"]["airflowDagRun"]["dagRun"]["run_id"])
            )


def test_the_dag_run_has_only_its_terminal_event(airflow_run: AirflowRun) -> None:
    # `airflow dags test` creates the DAG run already running; Airflow announces a DAG run as started only
    # when the scheduler moves it from queued to running, so the provider never sends its START here.
    by_run: dict[str, list[str]] = defaultdict(list)
    for event in airflow_run.events:
        if job_type(event) == "DAG":
            by_run[event["run"]["runId"]].append(event["eventType"])
    assert list(by_run.values()) == [["COMPLETE"], ["FAIL"]]
    failed = [event for event in airflow_run.events if job_type(event) == "DAG" and event["eventType"] == "FAIL"]
    assert failed[0]["run"]["facets"]["errorMessage"]["message"] == "task_failure"
    assert failed[0]["run"]["facets"]["airflowState"]["dagRunState"] == "failed"


# -- datasets -------------------------------------------------------------------------------------
def test_every_dataset_is_a_file_under_the_data_dir_declared_as_an_asset(airflow_run: AirflowRun) -> None:
    seen = 0
    for event in airflow_run.events:
        declared = event["run"]["facets"].get("airflow", {}).get("task", {})
        for side, dataset in datasets(event):
            assert dataset["namespace"] == DATASET_NAMESPACE
            path = Path(dataset["name"])
            assert path.is_absolute() and path.is_relative_to(airflow_run.data_dir), dataset["name"]
            # The task's inlets/outlets, as the airflow run facet repeats them, hold the Asset's file:// URI.
            assert f"'uri': '{path.as_uri()}'" in declared["inlets" if side == "inputs" else "outlets"]
            seen += 1
    assert seen
    written = {
        name for event in airflow_run.events if event["eventType"] == "COMPLETE" for name in names(event, "outputs")
    }
    assert written and all(Path(name).is_file() for name in written)


def test_inputs_and_outputs_are_the_same_at_start_and_end(airflow_run: AirflowRun) -> None:
    for events in task_events(airflow_run.events).values():
        for side in ("inputs", "outputs"):
            assert len({frozenset(names(event, side)) for event in events}) == 1


def test_some_tasks_only_write_and_others_read_what_they_wrote(airflow_run: AirflowRun) -> None:
    for events in dag_runs(airflow_run):
        ends = [event for event in events if job_type(event) == "TASK" and event["eventType"] in TERMINAL]
        only_outputs = {task_id(event) for event in ends if event["outputs"] and not event["inputs"]}
        both = {task_id(event) for event in ends if event["outputs"] and event["inputs"]}
        assert only_outputs and both
        written = {name: task_id(event) for event in ends for name in names(event, "outputs")}
        for event in ends:
            for name in names(event, "inputs"):
                # Every file a task reads was written by another task of the same DAG run.
                assert name in written and written[name] != task_id(event), name
        # ... so the lineage runs from a writer-only task through a reading-and-writing one.
        assert any(
            written[name] in only_outputs for event in ends if task_id(event) in both for name in names(event, "inputs")
        )


def test_the_failed_task_keeps_its_declared_inputs_and_outputs(airflow_run: AirflowRun) -> None:
    first, second = dag_runs(airflow_run)
    failed = [event for event in second if event["eventType"] == "FAIL" and job_type(event) == "TASK"]
    assert [task_id(event) for event in failed] == [FAILING_TASK]
    # The task raised before it read or wrote anything, yet its FAIL event names its inlets and outlets,
    # the same ones its COMPLETE event named in the first run.
    completed = task_events(first)[FAILING_TASK][-1]
    assert failed[0]["inputs"] and failed[0]["outputs"]
    for side in ("inputs", "outputs"):
        assert names(failed[0], side) == names(completed, side)
