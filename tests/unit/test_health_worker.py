"""The health processor's wiring (processors/worker/health.py) without Kafka: what a flush publishes and
writes to the `health` table, and that a worker built from that table recovers the engine's state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from processors import metrics
from processors.config import ProcessorConfig
from processors.health.config import HealthConfig
from processors.health.persisted import FORMAT_VERSION
from processors.worker.health import HealthWorker
from schemas.codec import make_codec

H = 3_600_000


class Topic:
    def get_topic_name(self) -> str:
        return "upriver-health-changelog"

    def prepare_key(self, key: str, serializer: Any) -> tuple[bytes, Any]:
        return json.dumps(key).encode(), serializer

    def prepare_value(self, value: Any, serializer: Any) -> tuple[bytes, Any]:
        return json.dumps(value).encode(), serializer


class Table:
    """What faust's table gives the writer: its store and its changelog topic."""

    key_serializer = value_serializer = "json"

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog_topic = Topic()


class Publisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    def publish(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        self.sent.append((topic, key, value, partition))


def _cfg(tmp_path: Path) -> ProcessorConfig:
    return ProcessorConfig(
        app_id="t", bootstrap="localhost:1", events_topic="ev", edges_topic="ed", dlq_topic="dlq", runs_topic="runs",
        partitions=3, data_dir=tmp_path, health_clock="event",
        health_config=HealthConfig(lateness_ms=0, run_timeout_ms=H, upstream_grace_ms=0),
    )  # fmt: skip


def _run(rid: str, job: str, status: str, s: int, e: int | None, outputs: Any = (), rev: int = 2) -> dict[str, Any]:
    ns, name = job.split("/")
    return {"run_id": rid, "revision": rev, "job_namespace": ns, "job_name": name, "job_kind": "OTHER",
            "status": status, "started_at": s, "ended_at": e, "inputs": [], "outputs": list(outputs),
            "facets": "{}"}  # fmt: skip


def test_a_flush_publishes_alerts_and_writes_the_state_then_a_new_worker_recovers_it(tmp_path: Path) -> None:
    cfg, publisher, table = _cfg(tmp_path), Publisher(), Table()
    worker = HealthWorker(cfg, publisher, table)  # type: ignore[arg-type]
    e = worker.engine()
    model = {"kind": "MODEL", "namespace": "reg", "name": "m", "version": "v1", "facets": None}
    e.add_run(_run("u", "p/upload", "COMPLETE", 0, 10, [model]))  # a model with no upstream: MISSING_UPSTREAM
    e.add_run(_run("s", "p/slow", "START", 20, None, rev=1))
    e.advance(worker.clock(e))
    e.sweep()
    worker.flush(e)
    alerts = [make_codec("alert").decode(v) for t, _, v, _ in publisher.sent if t == cfg.alerts_topic and v]
    assert [(a["kind"], a["subject"], a["status"], a["opened_at"]) for a in alerts] == [
        ("MISSING_UPSTREAM", "model:reg/m", "OPEN", 10)
    ]
    changelog = [(json.loads(k), json.loads(v)) for t, k, v, _ in publisher.sent if t == "upriver-health-changelog"]
    assert {k for k, _ in changelog} >= {"n:model:reg/m", "r:s", "d:u", "j:job:p/slow", "meta"}
    assert all(v["v"] == FORMAT_VERSION for _, v in changelog)
    assert "r:u" not in table.data  # applied: its entry was never written, nothing to delete
    assert sum(1 for t, *_ in publisher.sent if t == "upriver-health-changelog") == len(table.data)

    # A restarted worker's table is what faust's recovery reads back from the changelog: the last record per
    # key, tombstones removing it (the running worker's store keeps only keys: the engine holds the state).
    restored = Table()
    for t, k, v, _ in publisher.sent:
        if t == "upriver-health-changelog":
            if v is None:
                restored.data.pop(json.loads(k), None)
            else:
                restored.data[json.loads(k)] = json.loads(v)
    recovered = HealthWorker(cfg, Publisher(), restored).engine()  # type: ignore[arg-type]
    assert recovered.state.nodes == e.state.nodes and recovered.state.alerts == e.state.alerts
    assert recovered.open_runs == {"job:p/slow": {"s": 20}} and (recovered.settled, recovered.watermark) == (20, 20)


def test_publishing_the_figures_sets_the_gauges_by_kind_and_namespace(tmp_path: Path) -> None:
    cfg, publisher, table = _cfg(tmp_path), Publisher(), Table()
    worker = HealthWorker(cfg, publisher, table)  # type: ignore[arg-type]
    e = worker.engine()
    model = {"kind": "MODEL", "namespace": "reg", "name": "m", "version": "v1", "facets": None}
    e.add_run(_run("u", "p/upload", "COMPLETE", 0, 10, [model]))
    e.advance(worker.clock(e))
    for _ in e.timer_pass(chunk=0):
        pass
    worker.publish_health(e.figures_at, e.figures)
    series = [make_codec("health_metric").decode(v) for t, _, v, _ in publisher.sent if t == cfg.health_topic and v]
    assert {(p["namespace"], p["metric"], p["value"]) for p in series} >= {
        ("reg", "artifacts", 1.0), ("reg", "open_alerts", 1.0), ("reg", "alerts_orphaned", 1.0),
    }  # fmt: skip
    assert metrics.OPEN_ALERTS.labels("MISSING_UPSTREAM", "reg")._value.get() == 1
    assert metrics.ORPHANED_ARTIFACTS.labels("reg")._value.get() == 1
