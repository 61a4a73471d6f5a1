"""Settings: one frozen object per deployable, read from the environment only at entry points.

Every environment variable Upriver reads is named in `ENV` below (the compose test checks
`compose/docker-compose.yml` against it). Nothing here is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# One place for every environment variable name (and its default), so docs, compose and code agree.
ENV: dict[str, str] = {
    # Unset: the local stack starts its own single-node KRaft broker.
    "KAFKA_BOOTSTRAP_SERVERS": "",
    # Unset: Avro single-object encoding (schema fingerprint); set: Confluent wire format.
    "SCHEMA_REGISTRY_URL": "",
    # chdb://<dir> is embedded ClickHouse (one process owns it); http(s)://user:pass@host:port a server.
    "CLICKHOUSE_URL": "",
    "CLICKHOUSE_DATABASE": "upriver",
    "UPRIVER_HOME": ".upriver",
    "UPRIVER_CACHE_DIR": ".cache",
    "UPRIVER_EVENTS_TOPIC": "upriver.events.v1",
    "UPRIVER_EDGES_TOPIC": "upriver.edges.v1",
    "UPRIVER_RUNS_TOPIC": "upriver.runs.v1",
    "UPRIVER_DLQ_TOPIC": "upriver.dlq.v1",
    "UPRIVER_ALERTS_TOPIC": "upriver.alerts.v1",
    "UPRIVER_HEALTH_TOPIC": "upriver.metrics.v1",
    "UPRIVER_DRIFT_LINKS_TOPIC": "upriver.drift-links.v1",
    # OpenLineage JSON as the openlineage-python/Java `kafka` transport writes it (docs/openlineage.md).
    "UPRIVER_OPENLINEAGE_TOPIC": "openlineage.events",
    "UPRIVER_TOPIC_PARTITIONS": "4",
    "UPRIVER_PROCESSOR_ID": "upriver-processor",
    "UPRIVER_SINK_GROUP": "upriver-sink",
    "UPRIVER_DEDUP_RETENTION_S": "86400",
    "UPRIVER_SINK_BATCH_ROWS": "5000",
    "UPRIVER_SINK_BATCH_MS": "200",
    "UPRIVER_METRICS_PORT": "0",
    "UPRIVER_API_HOST": "127.0.0.1",
    "UPRIVER_API_PORT": "5000",
    # When set, every /api/ request needs `Authorization: Bearer <token>` (OpenLineage transports' api_key).
    "UPRIVER_API_TOKEN": "",
    # Health processor (docs/health.md): on/off, rules file (TOML), clock (wall | event), timer interval.
    "UPRIVER_HEALTH_ENABLED": "1",
    "UPRIVER_HEALTH_RULES": "",
    "UPRIVER_HEALTH_CLOCK": "wall",
    "UPRIVER_HEALTH_INTERVAL_S": "10",
}


def _get(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    return value if value != "" else ENV[name]


def _clock(value: str) -> str:
    if value not in ("wall", "event"):
        raise ValueError(f"UPRIVER_HEALTH_CLOCK must be 'wall' or 'event', got {value!r}")
    return value


@dataclass(frozen=True)
class Topics:
    events: str = ENV["UPRIVER_EVENTS_TOPIC"]
    edges: str = ENV["UPRIVER_EDGES_TOPIC"]
    runs: str = ENV["UPRIVER_RUNS_TOPIC"]
    dlq: str = ENV["UPRIVER_DLQ_TOPIC"]
    alerts: str = ENV["UPRIVER_ALERTS_TOPIC"]
    health: str = ENV["UPRIVER_HEALTH_TOPIC"]
    drift_links: str = ENV["UPRIVER_DRIFT_LINKS_TOPIC"]
    openlineage: str = ENV["UPRIVER_OPENLINEAGE_TOPIC"]
    partitions: int = int(ENV["UPRIVER_TOPIC_PARTITIONS"])

    @classmethod
    def unique(cls, suffix: str, partitions: int = 4) -> Topics:
        """Every topic with `suffix` appended (tests and benchmarks that share one broker)."""
        base = cls()
        return cls(
            events=f"{base.events}.{suffix}",
            edges=f"{base.edges}.{suffix}",
            runs=f"{base.runs}.{suffix}",
            dlq=f"{base.dlq}.{suffix}",
            alerts=f"{base.alerts}.{suffix}",
            health=f"{base.health}.{suffix}",
            drift_links=f"{base.drift_links}.{suffix}",
            openlineage=f"{base.openlineage}.{suffix}",
            partitions=partitions,
        )

    def names(self) -> tuple[str, ...]:
        return (
            self.events,
            self.edges,
            self.runs,
            self.dlq,
            self.alerts,
            self.health,
            self.drift_links,
            self.openlineage,
        )


@dataclass(frozen=True)
class Settings:
    """Everything a deployable needs; build with `Settings.from_env()` at the entry point."""

    home: Path = Path(ENV["UPRIVER_HOME"])
    cache_dir: Path = Path(ENV["UPRIVER_CACHE_DIR"])
    kafka_bootstrap: str = ""
    schema_registry_url: str = ""
    clickhouse_url: str = ""
    clickhouse_database: str = ENV["CLICKHOUSE_DATABASE"]
    topics: Topics = field(default_factory=Topics)
    processor_id: str = ENV["UPRIVER_PROCESSOR_ID"]
    sink_group: str = ENV["UPRIVER_SINK_GROUP"]
    dedup_retention_s: int = int(ENV["UPRIVER_DEDUP_RETENTION_S"])
    sink_batch_rows: int = int(ENV["UPRIVER_SINK_BATCH_ROWS"])
    sink_batch_ms: int = int(ENV["UPRIVER_SINK_BATCH_MS"])
    metrics_port: int = 0
    api_host: str = ENV["UPRIVER_API_HOST"]
    api_port: int = int(ENV["UPRIVER_API_PORT"])
    api_token: str = field(default="", repr=False)  # never printed
    health_enabled: bool = True
    health_rules: str = ""
    health_clock: str = ENV["UPRIVER_HEALTH_CLOCK"]
    health_interval_s: float = float(ENV["UPRIVER_HEALTH_INTERVAL_S"])
    # librdkafka keys passed through unchanged to every confluent-kafka client (e.g. security).
    kafka_extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(_get(env, "UPRIVER_HOME"))
        extra = {
            k[len("UPRIVER_KAFKA_") :].lower().replace("_", "."): v
            for k, v in env.items()
            if k.startswith("UPRIVER_KAFKA_")
        }
        return cls(
            home=home,
            cache_dir=Path(_get(env, "UPRIVER_CACHE_DIR")),
            kafka_bootstrap=_get(env, "KAFKA_BOOTSTRAP_SERVERS"),
            schema_registry_url=_get(env, "SCHEMA_REGISTRY_URL"),
            clickhouse_url=_get(env, "CLICKHOUSE_URL") or f"chdb://{(home / 'chdb').resolve()}",
            clickhouse_database=_get(env, "CLICKHOUSE_DATABASE"),
            topics=Topics(
                events=_get(env, "UPRIVER_EVENTS_TOPIC"),
                edges=_get(env, "UPRIVER_EDGES_TOPIC"),
                runs=_get(env, "UPRIVER_RUNS_TOPIC"),
                dlq=_get(env, "UPRIVER_DLQ_TOPIC"),
                alerts=_get(env, "UPRIVER_ALERTS_TOPIC"),
                health=_get(env, "UPRIVER_HEALTH_TOPIC"),
                drift_links=_get(env, "UPRIVER_DRIFT_LINKS_TOPIC"),
                openlineage=_get(env, "UPRIVER_OPENLINEAGE_TOPIC"),
                partitions=int(_get(env, "UPRIVER_TOPIC_PARTITIONS")),
            ),
            processor_id=_get(env, "UPRIVER_PROCESSOR_ID"),
            sink_group=_get(env, "UPRIVER_SINK_GROUP"),
            dedup_retention_s=int(_get(env, "UPRIVER_DEDUP_RETENTION_S")),
            sink_batch_rows=int(_get(env, "UPRIVER_SINK_BATCH_ROWS")),
            sink_batch_ms=int(_get(env, "UPRIVER_SINK_BATCH_MS")),
            metrics_port=int(_get(env, "UPRIVER_METRICS_PORT")),
            api_host=_get(env, "UPRIVER_API_HOST"),
            api_port=int(_get(env, "UPRIVER_API_PORT")),
            api_token=_get(env, "UPRIVER_API_TOKEN"),
            health_enabled=_get(env, "UPRIVER_HEALTH_ENABLED").lower() not in ("0", "false", "no", "off"),
            health_rules=_get(env, "UPRIVER_HEALTH_RULES"),
            health_clock=_clock(_get(env, "UPRIVER_HEALTH_CLOCK")),
            health_interval_s=float(_get(env, "UPRIVER_HEALTH_INTERVAL_S")),
            kafka_extra=extra,
        )

    def with_bootstrap(self, bootstrap: str) -> Settings:
        from dataclasses import replace

        return replace(self, kafka_bootstrap=bootstrap)

    def to_env(self) -> dict[str, str]:
        """The environment a child process needs to rebuild these settings (used by the local stack)."""
        env = {
            "UPRIVER_HOME": str(self.home),
            "UPRIVER_CACHE_DIR": str(self.cache_dir),
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "SCHEMA_REGISTRY_URL": self.schema_registry_url,
            "CLICKHOUSE_URL": self.clickhouse_url,
            "CLICKHOUSE_DATABASE": self.clickhouse_database,
            "UPRIVER_EVENTS_TOPIC": self.topics.events,
            "UPRIVER_EDGES_TOPIC": self.topics.edges,
            "UPRIVER_RUNS_TOPIC": self.topics.runs,
            "UPRIVER_DLQ_TOPIC": self.topics.dlq,
            "UPRIVER_ALERTS_TOPIC": self.topics.alerts,
            "UPRIVER_HEALTH_TOPIC": self.topics.health,
            "UPRIVER_DRIFT_LINKS_TOPIC": self.topics.drift_links,
            "UPRIVER_OPENLINEAGE_TOPIC": self.topics.openlineage,
            "UPRIVER_TOPIC_PARTITIONS": str(self.topics.partitions),
            "UPRIVER_PROCESSOR_ID": self.processor_id,
            "UPRIVER_SINK_GROUP": self.sink_group,
            "UPRIVER_DEDUP_RETENTION_S": str(self.dedup_retention_s),
            "UPRIVER_SINK_BATCH_ROWS": str(self.sink_batch_rows),
            "UPRIVER_SINK_BATCH_MS": str(self.sink_batch_ms),
            "UPRIVER_METRICS_PORT": str(self.metrics_port),
            "UPRIVER_API_HOST": self.api_host,
            "UPRIVER_API_PORT": str(self.api_port),
            "UPRIVER_API_TOKEN": self.api_token,
            "UPRIVER_HEALTH_ENABLED": "1" if self.health_enabled else "0",
            "UPRIVER_HEALTH_RULES": self.health_rules,
            "UPRIVER_HEALTH_CLOCK": self.health_clock,
            "UPRIVER_HEALTH_INTERVAL_S": str(self.health_interval_s),
        }
        for k, v in self.kafka_extra.items():
            env["UPRIVER_KAFKA_" + k.upper().replace(".", "_")] = v
        return env

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """Base librdkafka config shared by producers, consumers and admin clients."""
        return {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_extra}
