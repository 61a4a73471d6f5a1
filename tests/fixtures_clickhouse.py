"""Pytest plugin: one embedded chDB directory per test session, a fresh random database per test.

chDB allows one directory per process, so every test that needs ClickHouse must use `chdb_url`.
Register from tests/conftest.py with `pytest_plugins = ["tests.fixtures_clickhouse"]`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from sinks.clickhouse import connect
from sinks.migrations import apply_migrations


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`chdb:///…` of this session's embedded ClickHouse directory."""
    return f"chdb://{tmp_path_factory.mktemp('chdb').resolve()}"


@pytest.fixture(scope="session")
def _chdb_admin(chdb_url: str) -> Iterator[Client]:
    # Held open for the whole session so the engine is not torn down between tests.
    client = connect(chdb_url)
    yield client
    client.close()


@pytest.fixture
def ch_database(_chdb_admin: Client) -> Iterator[str]:
    """A migrated database `t_<hex>` private to one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    apply_migrations(_chdb_admin, name)
    yield name
    _chdb_admin.command(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def ch_client(chdb_url: str, _chdb_admin: Client) -> Iterator[Client]:
    """A client on the session's chDB engine; qualify tables with `ch_database`."""
    client = connect(chdb_url)
    yield client
    client.close()
