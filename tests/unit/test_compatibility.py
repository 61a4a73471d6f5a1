"""The OpenLineage community compatibility tests (consumer scenarios, tests/fixtures/compatibility): each
scenario's events through the mapping and the processor's derivation into embedded ClickHouse, then the
stored state checked against the scenario's expected.json (written from the spec and the events) through
the read API. tests/integration/test_compatibility_stack.py sends the same events over HTTP and Kafka."""

from __future__ import annotations

import json
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from compat_support import NAMES, expected_state, scenario_events
from ol_check import InProcess, check
from ol_truth import expected

from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader


def test_all_six_scenarios_and_74_events_are_here() -> None:
    assert len(NAMES) == 6
    assert sum(len(scenario_events(n)) for n in NAMES) == 74


@pytest.mark.parametrize("name", NAMES)
def test_scenario_state_matches_the_expected_state(name: str, ch_client: Client, ch_database: str) -> None:
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in scenario_events(name)], derived_at=0)
    want = expected_state(name)
    assert check(InProcess(LineageReader(ch_client, ch_database)), want) == []


@pytest.mark.parametrize("name", NAMES)
def test_the_truth_module_agrees_with_the_hand_written_expectations(name: str) -> None:
    """tests/ol_truth.py judges the real producers' events; here it meets expectations written by hand."""
    got, want = expected(scenario_events(name)), expected_state(name)

    def keys(doc: dict[str, Any], what: str) -> list[str]:
        return sorted(json.dumps(x, sort_keys=True) for x in doc[what])

    for what in ("datasets", "jobs", "edges", "column_edges", "dataset_column_edges", "column_only_datasets"):
        assert keys(got, what) == keys(want, what), what
    runs = {r["run_id"]: (r["final_state"], r["error_message"], r["parent_run_id"]) for r in got["runs"]}
    assert runs == {r["run_id"]: (r["final_state"], r["error_message"], r["parent_run_id"]) for r in want["runs"]}
