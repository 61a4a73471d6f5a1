"""The worker's configuration, apart from faust: importing it starts nothing and registers no metric.

`upriver/deploy/components.py` builds it from `Settings` in every process; only the worker (`processors/worker/app.py`)
imports faust and the processor's Prometheus metrics (`processors/metrics.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.health.config import HealthConfig
from schemas import topics


@dataclass(frozen=True)
class ProcessorConfig:
    app_id: str
    bootstrap: str
    events_topic: str
    edges_topic: str
    dlq_topic: str
    runs_topic: str
    partitions: int
    data_dir: Path
    registry_url: str = ""
    dedup_retention_s: int = 86_400
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # librdkafka settings for the output producer (security etc.), passed through unchanged.
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)
    # How long a silent worker keeps its partitions: after a crash its replacement waits this long.
    session_timeout_s: float = 15.0
    # Health processor (docs/health.md): reads the runs topic, publishes alerts, drift links, metrics.
    health_enabled: bool = True
    alerts_topic: str = topics.ALERTS
    health_topic: str = topics.HEALTH
    drift_links_topic: str = topics.DRIFT_LINKS
    health_config: HealthConfig = field(default_factory=HealthConfig)
    health_clock: str = "wall"  # wall: the machine's clock; event: the greatest event time seen (replays)
    health_interval_s: float = 10.0
    # OpenLineage JSON topic (the openlineage-python/Java kafka transport's format); "" turns it off.
    openlineage_topic: str = ""
