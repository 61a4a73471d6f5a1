"""Tag changes for the Marquez read tests, as the two paths the read side merges bring them: `load_changes` puts
TagChange records into `tag_changes` as the sink does (Avro encode and decode with the topic's codec, then
sinks.rows.tag_change_row at its own partition and offset); `acknowledge` hands one to the reader as a tag
write route does once Kafka acknowledged it, before any sink loaded it."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from clickhouse_connect.driver.client import Client

from schemas.codec import SingleObjectCodec
from sinks.rows import TAG_CHANGES, tag_change_row
from sinks.writer import ClickHouseWriter
from upriver.http.marquez.tags import change
from upriver.http.tags import tag_record
from upriver.readside.lineage import LineageReader

_OFFSETS = itertools.count()


def tag(op: str, entity: str, namespace: str, name: str, tag_name: str, field: str | None = None) -> dict[str, Any]:
    """A TagChange made now, as the tag routes make it."""
    return change(op, entity, namespace, name, field, tag_name, "test")


def load_changes(client: Client, database: str, *changes: dict[str, Any]) -> None:
    codec = SingleObjectCodec("tag_change")
    rows = [tag_change_row(codec.decode(codec.encode(tag_record(c))), 0, next(_OFFSETS)) for c in changes]
    ClickHouseWriter(client, database).insert(TAG_CHANGES.name, rows, TAG_CHANGES.columns, TAG_CHANGES.types,
                                              f"t{uuid.uuid4()}")  # fmt: skip


def acknowledge(reader: LineageReader, *changes: dict[str, Any]) -> None:
    for c in changes:
        reader.tags.acknowledged(tag_record(c))
