"""Settings for a local stack of its own in an integration test: the session's broker and chDB, and a
database, topics and consumer groups no other test shares."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from upriver.local.stack import LocalStack, free_port
from upriver.settings import Settings, Topics


def isolated_settings(kafka_bootstrap: str, chdb_url: str, home: Path, name: str, **overrides: Any) -> Settings:
    uid = uuid.uuid4().hex[:10]
    base = replace(
        Settings.from_env({}),
        home=home,
        kafka_bootstrap=kafka_bootstrap,
        clickhouse_url=chdb_url,
        clickhouse_database=f"{name}_{uid}",
        topics=Topics.unique(uid, partitions=4),
        processor_id=f"proc-{uid}",
        sink_group=f"sink-{uid}",
        sink_batch_ms=100,
    )
    return replace(base, **overrides)


def wait_until(check: Callable[[], bool], timeout: float = 90.0, what: str = "condition", every: float = 0.25) -> None:
    """Poll `check` until it holds; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def ready_stack(
    kafka_bootstrap: str, chdb_url: str, home: Path, name: str, api_port: int | None = None, **overrides: Any
) -> Iterator[LocalStack]:
    """A LocalStack of its own (`isolated_settings`), its API on a free port (or `api_port`; -1: none), the
    worker's group stable before it is handed over; stopped afterwards."""
    settings = isolated_settings(kafka_bootstrap, chdb_url, home, name, **overrides)
    with LocalStack(settings, api_port=free_port() if api_port is None else api_port) as stack:
        stack.wait_worker_ready()
        yield stack
