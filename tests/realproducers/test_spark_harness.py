"""The Spark harness runs a real PySpark job under the OpenLineage listener and hands back what it emitted.

These are the facts the consuming tests rely on, each derived from the events themselves (and from the job's
own file layout under the workdir), never from counts copied out of one run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .spark import NAMESPACE, SparkRun

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture
def workdir(spark_run: SparkRun) -> Path:
    """The run's workdir (its warehouse's parent); the run itself is one per session (fixtures.py)."""
    return spark_run.warehouse.parent


def _datasets(event: dict[str, Any], side: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = event.get(side) or []
    return found


def _all_datasets(events: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str, dict[str, Any]]]:
    for event in events:
        for side in ("inputs", "outputs"):
            for dataset in _datasets(event, side):
                yield event, side, dataset


def _complete(run: SparkRun) -> list[dict[str, Any]]:
    return [e for e in run.events if e["eventType"] == "COMPLETE"]


def _names(events: list[dict[str, Any]], side: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for e in events for d in _datasets(e, side)}


def test_the_run_succeeded_and_every_event_is_a_run_event_of_the_fixed_namespace(spark_run: SparkRun) -> None:
    assert spark_run.exit_code == 0
    assert spark_run.events
    for event in spark_run.events:
        assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
        assert event["job"]["namespace"] == NAMESPACE
        assert event["run"]["runId"]
        assert event["schemaURL"].startswith("https://openlineage.io/spec/")
        assert "/integration/spark" in event["producer"]


def test_the_application_run_frames_the_stream_and_parents_every_other_run(spark_run: SparkRun) -> None:
    first, last = spark_run.events[0], spark_run.events[-1]
    app_run = first["run"]["runId"]
    assert (first["eventType"], last["eventType"]) == ("START", "COMPLETE")
    assert last["run"]["runId"] == app_run
    for event in spark_run.events:
        if event["run"]["runId"] == app_run:
            continue
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == app_run
        assert parent["job"] == {"namespace": first["job"]["namespace"], "name": first["job"]["name"]}


def test_no_run_starts_after_it_completes(spark_run: SparkRun) -> None:
    """The listener may send a run's COMPLETE alone (a fast query: seen in CI); when it sends a START, the
    START comes first and the COMPLETE last."""
    seen: dict[str, list[str]] = {}
    for event in spark_run.events:
        seen.setdefault(event["run"]["runId"], []).append(event["eventType"])
    assert any(types[0] == "START" for types in seen.values())
    for run_id, types in seen.items():
        if "START" in types:
            assert types.index("START") == 0, (run_id, types)
        if "COMPLETE" in types:
            assert types.index("COMPLETE") == len(types) - 1, (run_id, types)


def test_completed_runs_read_the_csv_and_the_parquet_as_file_datasets(spark_run: SparkRun, workdir: Path) -> None:
    inputs = _names(_complete(spark_run), "inputs")
    assert ("file", str(workdir / "input" / "customers.csv")) in inputs
    assert ("file", str(workdir / "input" / "orders")) in inputs


def test_completed_runs_write_the_parquet_outputs(spark_run: SparkRun, workdir: Path) -> None:
    outputs = _names(_complete(spark_run), "outputs")
    assert ("file", str(workdir / "out" / "revenue_by_country")) in outputs
    assert ("file", str(workdir / "out" / "top_customers")) in outputs


def test_the_catalog_table_carries_a_symlinks_facet_naming_it_in_the_warehouse(spark_run: SparkRun) -> None:
    linked = [(side, d) for _, side, d in _all_datasets(spark_run.events) if "symlinks" in d.get("facets", {})]
    assert linked
    assert {side for side, _ in linked} == {"inputs", "outputs"}  # written by name, and read back by name
    for _, dataset in linked:
        identifiers = dataset["facets"]["symlinks"]["identifiers"]
        assert identifiers
        for ident in identifiers:
            assert ident["type"] == "TABLE"
            assert ident["namespace"] == f"file:{spark_run.warehouse}"
            database, table = ident["name"].split(".")
            assert dataset["namespace"] == "file"
            assert dataset["name"] == str(spark_run.warehouse / f"{database}.db" / table)


def test_the_same_table_is_written_by_path_without_and_by_name_with_a_symlink(spark_run: SparkRun) -> None:
    linked = {
        (d["namespace"], d["name"])
        for _, side, d in _all_datasets(_complete(spark_run))
        if side == "outputs" and "symlinks" in d.get("facets", {})
    }
    unlinked = {
        (d["namespace"], d["name"])
        for _, side, d in _all_datasets(_complete(spark_run))
        if side == "outputs" and "symlinks" not in d.get("facets", {})
    }
    assert linked & unlinked


def test_column_lineage_points_at_the_runs_own_inputs(spark_run: SparkRun) -> None:
    facets = [
        (event, d["facets"]["columnLineage"])
        for event, side, d in _all_datasets(_complete(spark_run))
        if side == "outputs" and "columnLineage" in d.get("facets", {})
    ]
    assert facets
    for event, lineage in facets:
        inputs = {(d["namespace"], d["name"]) for d in _datasets(event, "inputs")}
        refs = [ref for field in lineage["fields"].values() for ref in field["inputFields"]]
        refs += lineage.get("dataset", [])
        assert refs
        for ref in refs:
            assert (ref["namespace"], ref["name"]) in inputs, ref
            assert ref["field"]
            assert all(t["type"] in {"DIRECT", "INDIRECT"} for t in ref.get("transformations", []))
