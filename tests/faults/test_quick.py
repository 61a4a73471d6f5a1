"""The quick part of the fault suite (in `make test`): one workload with the worker SIGKILLed three times,
one with the sink SIGKILLed three times, each counted against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.harness import fault_settings, kill_sink, kill_worker, run_scenario

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name,fault", [("worker-sigkill", kill_worker), ("sink-sigkill", kill_sink)])
def test_killed_processes_lose_nothing(kafka_bootstrap: str, tmp_path: Path, name: str, fault: object) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, "fq")
    result = run_scenario(name, settings, fault, seed=7, events=6_000)  # type: ignore[arg-type]
    assert result.ok, result.record()
    assert result.events == 6_000 and result.malformed > 0
