"""The health processor's wiring: runs topic -> processors.health.engine.HealthEngine -> alerts, drift links,
the HealthMetric series and the Prometheus health gauges (docs/health.md).

Its state is a graph over every run, so it needs all partitions of the runs topic in one worker (the
local stack runs one; docs/health.md, "Scaling"). The engine's state lives in the `health` table: the
keys it marks dirty are written through `ChangelogWriter` after each batch and timer pass, in the
persisted form of processors/health/persisted.py, and a restarted worker rebuilds the engine from the
recovered table. faust is imported by processors/worker/app.py only; the app is passed in.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping
from typing import Any

from processors import metrics
from processors.config import ProcessorConfig
from processors.health.engine import HealthEngine
from processors.health.figures import gauge_figures
from processors.worker.app import (
    CHANGELOG_CONFIG,
    PASS_CHUNK,
    TAKE_MAX,
    TAKE_WITHIN_S,
    ChangelogWriter,
    _raw_topic,
    now_ms,
)
from processors.worker.publisher import Publisher
from schemas.codec import make_codec


class HealthWorker:
    """The engine of one worker, built from the recovered table on first use, and what it publishes."""

    def __init__(self, cfg: ProcessorConfig, publisher: Publisher, table: Any) -> None:
        self.cfg = cfg
        self.publisher = publisher
        self.table = table
        # The engine is built from the recovered table once (`engine`); later values live in the engine only.
        self.changelog = ChangelogWriter(table, publisher, keep_values=False)
        self.alert_codec = make_codec("alert", cfg.registry_url, cfg.alerts_topic)
        self.link_codec = make_codec("drift_link", cfg.registry_url, cfg.drift_links_topic)
        self.metric_codec = make_codec("health_metric", cfg.registry_url, cfg.health_topic)
        self._engine: HealthEngine | None = None

    def engine(self) -> HealthEngine:
        if self._engine is None:
            e = HealthEngine(self.cfg.health_config)
            e.load(list(self.table.data.items()))
            self._engine = e
        return self._engine

    def clock(self, e: HealthEngine) -> int:
        return now_ms() if self.cfg.health_clock == "wall" else e.watermark

    def flush(self, e: HealthEngine) -> None:
        """Publish the engine's alert transitions and drift links, and write its changed state keys."""
        cfg, at = self.cfg, now_ms()
        alerts, links = e.take()
        for alert in alerts:
            value = self.alert_codec.encode({**alert, "updated_at": at})
            self.publisher.publish(cfg.alerts_topic, alert["subject"].encode(), value)
            metrics.ALERTS_OUT.labels(alert["kind"], alert["status"]).inc()
        for link in links:
            value = self.link_codec.encode({**link, "linked_at": at})
            self.publisher.publish(cfg.drift_links_topic, link["source"].encode(), value)
            metrics.DRIFT_LINKS_OUT.labels(link["direction"]).inc()
        for key in e.take_dirty():
            state = e.export(key)
            partition = zlib.crc32(key.encode()) % cfg.partitions
            if state is not None:
                self.changelog.set(partition, key, state)
            elif key in self.table.data:
                self.changelog.delete(partition, key)
        metrics.HEALTH_LATE.set(e.late_facts)

    def publish_health(self, at: int, figures: Mapping[tuple[str, str], float]) -> None:
        """A timer pass's namespace figures: the HealthMetric series and the Prometheus gauges."""
        metrics.HEALTH_SETTLED.set(max(at, 0) / 1000)
        for (namespace, metric), value in sorted(figures.items()):
            record = {"measured_at": at, "namespace": namespace, "metric": metric, "value": float(value)}
            self.publisher.publish(self.cfg.health_topic, namespace.encode(), self.metric_codec.encode(record))
        gauges = {
            "artifacts": metrics.HEALTH_ARTIFACTS,
            "stale": metrics.STALE_ARTIFACTS,
            "orphaned": metrics.ORPHANED_ARTIFACTS,
            "coverage_ratio": metrics.COVERAGE,
        }
        for name, values in gauge_figures(figures, metrics.bounded_namespace).items():
            gauges[name].clear()
            for label, value in values.items():
                gauges[name].labels(label).set(value)
        metrics.OPEN_ALERTS.clear()
        open_by: dict[tuple[str, str], int] = {}
        for alert in self._engine.alerts.values() if self._engine is not None else ():
            k = (alert.kind, metrics.bounded_namespace(alert.namespace))
            open_by[k] = open_by.get(k, 0) + 1
        for (kind, label), n in open_by.items():
            metrics.OPEN_ALERTS.labels(kind, label).set(n)


def wire_health(app: Any, cfg: ProcessorConfig, publisher: Publisher, run_codec: Any) -> HealthWorker:
    """Declare the health topics and the `health` table on `app` (a faust.App), and add the agent reading
    the runs topic and the timer pass."""
    runs_in = _raw_topic(app, cfg.runs_topic, cfg.partitions)
    for name in (cfg.alerts_topic, cfg.health_topic, cfg.drift_links_topic):
        _raw_topic(app, name, cfg.partitions)
    table = app.Table(
        "health", default=None, partitions=cfg.partitions, key_type=str, extra_topic_configs=CHANGELOG_CONFIG
    )
    worker = HealthWorker(cfg, publisher, table)

    @app.agent(runs_in, name="lineage-health")  # type: ignore[untyped-decorator]
    async def health(stream: Any) -> None:
        async for batch in stream.take_events(TAKE_MAX, within=TAKE_WITHIN_S):
            e = worker.engine()
            for event in batch:
                e.add_run(run_codec.decode(event.message.value))
            metrics.HEALTH_RUNS_IN.inc(len(batch))
            e.advance(worker.clock(e))
            worker.flush(e)

    @app.timer(interval=cfg.health_interval_s)  # type: ignore[untyped-decorator]
    async def health_pass() -> None:
        recovery = getattr(app.tables, "recovery", None)
        if app.in_recovery or recovery is None or not recovery.completed.is_set():
            return
        e = worker.engine()
        started = time.perf_counter()
        e.advance(worker.clock(e))
        # in slices, yielding to the event loop: at 1M artifacts a pass takes seconds (README figures)
        for _ in e.timer_pass(chunk=PASS_CHUNK):
            await asyncio.sleep(0)
        metrics.HEALTH_PASS_SECONDS.observe(time.perf_counter() - started)
        worker.flush(e)
        worker.publish_health(e.figures_at, e.figures)

    return worker
