"""The fault suite's results: every run of `make test-faults` writes benchmarks/results/faults.json."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults.harness import RunResult, write_results

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "faults.json"


@pytest.fixture(scope="session")
def fault_results() -> Iterator[list[RunResult]]:
    """Runs of the full suite (marker `faults`) are collected here and written once at the end."""
    results: list[RunResult] = []
    yield results
    if results and os.environ.get("UPRIVER_FAULTS_JSON", "1") != "0":
        machine = {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_results(RESULTS, results, machine)
