"""Session fixtures: each real producer runs once per test session, shared by the harness checks and the
tests that feed its events into Upriver (tests/integration/test_real_producers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .airflow import AirflowRun, run_airflow
from .dbt import DbtRun, run_dbt
from .spark import SparkRun, run_spark

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("UPRIVER_CACHE_DIR", ROOT / ".cache"))


@pytest.fixture(scope="session")
def dbt_artifacts_run(tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    return run_dbt(tmp_path_factory.mktemp("dbt-artifacts"), CACHE, mode="artifacts")


@pytest.fixture(scope="session")
def dbt_structured_run(tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    return run_dbt(tmp_path_factory.mktemp("dbt-structured"), CACHE, mode="structured-logs")


@pytest.fixture(scope="session")
def spark_run(tmp_path_factory: pytest.TempPathFactory) -> SparkRun:
    return run_spark(tmp_path_factory.mktemp("spark").resolve(), CACHE)


@pytest.fixture(scope="session")
def airflow_session_run(tmp_path_factory: pytest.TempPathFactory) -> AirflowRun:
    return run_airflow(tmp_path_factory.mktemp("airflow"), CACHE)
