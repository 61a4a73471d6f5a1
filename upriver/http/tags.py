"""The tag writes' publisher: the `Writes` port (upriver/http/spec.py) over Kafka.

Each change the Marquez tag routes make (upriver/http/marquez/tags.py) is checked, encoded as an Avro
TagChange (schemas/tag_change.avsc) and sent to the tags topic (`upriver.tags.v1`, kept forever) through
the OpenLineage ingest's idempotent producer (`OpenLineageIngest.send`: the one confluent-kafka module of
upriver/http); `tag_change` returns once Kafka acknowledged it, so an answered write is durable. The sink
loads the topic into the `tag_changes` table, which is rebuilt from it on a replay. docs/marquez.md, Tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from schemas.codec import Codec
from sinks.rows import tag_entity_id
from upriver.http.api import ApiError
from upriver.http.ingest import IngestError

OPS = ("ADD", "REMOVE", "DEFINE")
ENTITIES = ("DATASET", "FIELD", "JOB", "TAG")
FIELDS = ("change_id", "op", "entity", "namespace", "name", "field", "tag", "description", "changed_at", "source")


def tag_record(change: Mapping[str, Any]) -> dict[str, Any]:
    """The TagChange record of a change (its fields, the optional ones None when absent); ValueError when it
    is not one (a route out of step with the schema)."""
    record = {name: change.get(name) for name in FIELDS}
    op, entity = record["op"], record["entity"]
    if op not in OPS or entity not in ENTITIES:
        raise ValueError(f"not a tag change: op {op!r}, entity {entity!r}")
    if (op == "DEFINE") != (entity == "TAG") or (record["field"] is None) == (entity == "FIELD"):
        raise ValueError(f"not a tag change: {op} of a {entity} (field {record['field']!r})")
    for name in ("change_id", "namespace", "name", "tag"):
        if not isinstance(record[name], str):
            raise ValueError(f"a tag change's {name} is a string, got {record[name]!r}")
    if not isinstance(record["changed_at"], int):
        raise ValueError(f"a tag change's changed_at is epoch ms, got {record['changed_at']!r}")
    for name, value in record.items():
        if isinstance(value, str) and not _unicode(value):
            raise ValueError(f"the tag change's {name} is not valid Unicode (a lone surrogate)")
    return record


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def tag_key(record: Mapping[str, Any]) -> bytes:
    """The Kafka key: the entity's node id (a field's: `<dataset id>#<field>`; a tag's: `tag:<name>`), so
    every change of one entity lands on one partition, in order."""
    entity_id = tag_entity_id(record["entity"], record["namespace"], record["name"])
    if record["entity"] == "FIELD":
        entity_id = f"{entity_id}#{record['field']}"
    return (entity_id or f"tag:{record['tag']}").encode()


class Sender(Protocol):
    """What sends one message and waits for Kafka's acknowledgement: `OpenLineageIngest.send`."""

    def send(self, topic: str, key: bytes, value: bytes) -> None: ...


class TagWrites:
    """`Writes` over the tags topic; thread-safe (the producer is the ingest's)."""

    def __init__(self, ingest: Sender, topic: str, codec: Codec) -> None:
        self._ingest = ingest
        self._topic = topic
        self._codec = codec

    def tag_change(self, change: Mapping[str, Any]) -> None:
        """Publish one change and wait for Kafka's acknowledgement; ApiError 503 when Kafka did not take it."""
        record = tag_record(change)
        try:
            self._ingest.send(self._topic, tag_key(record), self._codec.encode(record))
        except IngestError as exc:
            raise ApiError(exc.status, str(exc)) from None
