"""Shared fixtures: the real Kafka broker (one per session) and embedded ClickHouse (one chDB path per
session, a fresh database per test; see fixtures_clickhouse.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from upriver.local.broker import LocalBroker, ensure_jars

pytest_plugins = ["fixtures_clickhouse", "realproducers.fixtures"]

ROOT = Path(__file__).resolve().parents[1]


# -- Kafka ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """The session's own broker, or None when KAFKA_BOOTSTRAP_SERVERS names an existing cluster."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    cache = Path(os.environ.get("UPRIVER_CACHE_DIR", ROOT / ".cache"))
    ensure_jars(cache)
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), cache)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker: LocalBroker | None) -> str:
    if local_broker is None:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    return local_broker.bootstrap_servers
