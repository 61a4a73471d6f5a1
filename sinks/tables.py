"""Which topic feeds which table: the sink's settings port and the topic -> TableSpec mapping.

Pure wiring of `schemas.codec` decoders to `sinks.rows` row functions; no Kafka, no ClickHouse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from schemas.codec import Codec, make_codec
from sinks.batching import RowFn, TableSpec
from sinks.raw_events import lineage_event_row
from sinks.rows import (
    ALERTS,
    DEAD_LETTERS,
    DRIFT_LINKS,
    EDGES,
    HEALTH,
    LINEAGE_EVENTS,
    RUNS,
    TAG_CHANGES,
    Row,
    alert_row,
    dead_letter_row,
    drift_link_row,
    edge_row,
    health_row,
    run_row,
    tag_change_row,
)


class SinkSettings(Protocol):
    """The fields of `upriver.settings.Settings` the sink needs (sinks/ must not import upriver/)."""

    @property
    def schema_registry_url(self) -> str: ...
    @property
    def sink_group(self) -> str: ...
    @property
    def sink_batch_rows(self) -> int: ...
    @property
    def sink_batch_ms(self) -> int: ...
    @property
    def topics(self) -> SinkTopics: ...
    def kafka_config(self) -> Mapping[str, Any]: ...


class SinkTopics(Protocol):
    @property
    def edges(self) -> str: ...
    @property
    def runs(self) -> str: ...
    @property
    def dlq(self) -> str: ...
    @property
    def alerts(self) -> str: ...
    @property
    def health(self) -> str: ...
    @property
    def drift_links(self) -> str: ...
    @property
    def tags(self) -> str: ...
    @property
    def openlineage(self) -> str: ...


def _decoded(codec: Codec, to_row: Callable[[Mapping[str, Any], int, int], Row]) -> RowFn:
    def row_fn(value: bytes, partition: int, offset: int) -> Row:
        return to_row(codec.decode(value), partition, offset)

    return row_fn


def sink_tables(settings: SinkSettings) -> dict[str, TableSpec]:
    """Topic -> TableSpec: edges -> `edges`, runs -> `runs`, the dead-letter topic -> `dead_letters`,
    alerts -> `alerts`, health -> `health`, drift links -> `drift_links`, tag changes -> `tag_changes`, and
    the OpenLineage topic's JSON as received -> `lineage_events`."""
    url = settings.schema_registry_url
    t = settings.topics
    edges, runs, dlq = t.edges, t.runs, t.dlq
    tables = {
        edges: TableSpec(EDGES, _decoded(make_codec("edge", url, edges), edge_row)),
        runs: TableSpec(RUNS, _decoded(make_codec("run", url, runs), run_row)),
        dlq: TableSpec(DEAD_LETTERS, _decoded(make_codec("dead_letter", url, dlq), dead_letter_row)),
        t.alerts: TableSpec(ALERTS, _decoded(make_codec("alert", url, t.alerts), alert_row)),
        t.health: TableSpec(HEALTH, _decoded(make_codec("health_metric", url, t.health), health_row)),
        t.drift_links: TableSpec(DRIFT_LINKS, _decoded(make_codec("drift_link", url, t.drift_links), drift_link_row)),
        t.tags: TableSpec(TAG_CHANGES, _decoded(make_codec("tag_change", url, t.tags), tag_change_row)),
    }
    if t.openlineage:  # an empty name turns the OpenLineage topic off (the worker's `openlineage_topic` too)
        tables[t.openlineage] = TableSpec(LINEAGE_EVENTS, _untimed, lineage_event_row)
    return tables


def _untimed(value: bytes, partition: int, offset: int) -> Row:
    return lineage_event_row(value, partition, offset, 0)  # received_at: now
