"""Builds each deployable's parts from Settings (the only place Settings meet the stages' own configs).

Processor and sink packages never see `Settings`; they take plain arguments built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.config import ProcessorConfig
from processors.health.config import HealthConfig
from schemas.codec import make_codec
from sinks.clickhouse import connect
from sinks.loader import SinkLoader, build_sink
from sinks.migrations import apply_migrations
from sinks.retention import apply_retention
from sinks.writer import ClickHouseWriter
from upriver.http.api import HealthCheck
from upriver.http.ingest import OpenLineageIngest
from upriver.http.server import ApiServer
from upriver.http.tags import TagWrites
from upriver.readside.lineage import LineageReader
from upriver.settings import Settings


def processor_config(settings: Settings) -> ProcessorConfig:
    return ProcessorConfig(
        app_id=settings.processor_id,
        bootstrap=settings.kafka_bootstrap,
        events_topic=settings.topics.events,
        edges_topic=settings.topics.edges,
        runs_topic=settings.topics.runs,
        dlq_topic=settings.topics.dlq,
        partitions=settings.topics.partitions,
        data_dir=settings.home / "processor",
        registry_url=settings.schema_registry_url,
        dedup_retention_s=settings.dedup_retention_s,
        metrics_port=settings.metrics_port,
        metrics_host=settings.api_host,
        kafka_extra=dict(settings.kafka_extra),
        health_enabled=settings.health_enabled,
        alerts_topic=settings.topics.alerts,
        health_topic=settings.topics.health,
        drift_links_topic=settings.topics.drift_links,
        health_config=HealthConfig.from_toml(settings.health_rules) if settings.health_rules else HealthConfig(),
        health_clock=settings.health_clock,
        health_interval_s=settings.health_interval_s,
        openlineage_topic=settings.topics.openlineage,
    )


@dataclass
class Storage:
    """ClickHouse clients for one process: one for the sink's writes, one for reads."""

    write_client: Any
    read_client: Any
    database: str

    def reader(self) -> LineageReader:
        return LineageReader(self.read_client, self.database)


def open_storage(settings: Settings, migrate: bool = True) -> Storage:
    write_client = connect(settings.clickhouse_url)
    if migrate:
        apply_migrations(write_client, settings.clickhouse_database)
    read_client = connect(settings.clickhouse_url)
    return Storage(write_client, read_client, settings.clickhouse_database)


def sink_loader(settings: Settings, storage: Storage) -> SinkLoader:
    apply_retention(storage.write_client, storage.database, settings.raw_event_retention_days)
    writer = ClickHouseWriter(storage.write_client, storage.database)
    return build_sink(settings, writer)


def openlineage_ingest(settings: Settings) -> OpenLineageIngest:
    """The API's OpenLineage ingest: events to the events topic, raw copies to the OpenLineage topic."""
    codec = make_codec("lineage_event", settings.schema_registry_url, settings.topics.events)
    return OpenLineageIngest(settings.kafka_config(), settings.topics.events, codec,
                             raw_topic=settings.topics.openlineage or None)  # fmt: skip


def api_server(
    settings: Settings, storage: Storage, port: int | None = None, health: HealthCheck | None = None
) -> ApiServer:
    """The HTTP server of a process that owns ClickHouse: read API, health, OpenLineage ingest, the Marquez tag
    writes (through the ingest's producer to the tags topic), /metrics.

    `health` is the /healthz body of a supervisor (LocalStack.health); without it /healthz says ok."""
    ingest = openlineage_ingest(settings)
    writes = TagWrites(ingest, settings.topics.tags, make_codec("tag_change", settings.schema_registry_url,
                                                                settings.topics.tags))  # fmt: skip
    port = settings.api_port if port is None else port
    return ApiServer(storage.reader(), settings.api_host, port, ingest=ingest, token=settings.api_token, health=health,
                     writes=writes)  # fmt: skip
