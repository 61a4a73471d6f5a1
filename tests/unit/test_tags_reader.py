"""The tag read side (upriver/readside/tags.py) over embedded ClickHouse: TagChange records go through the
sink's own path (Avro encode, decode, sinks.rows.tag_change_row) into `tag_changes`; OpenLineage `tags`
facets come from events loaded with the lineage stage's functions. Last change per (entity, tag) wins,
removes, field tags, facet tags merged (and removed), defined tags and descriptions, acknowledged changes
merged until loaded, names with `/`, `:`, `#`, `%` and spaces kept."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from schemas.codec import SingleObjectCodec
from schemas.openlineage import to_record
from sinks.rows import TAG_CHANGES, tag_change_row
from sinks.writer import ClickHouseWriter
from upriver.http.tags import tag_key, tag_record
from upriver.local.bulk import load
from upriver.readside import tags as tags_mod
from upriver.readside.lineage import LineageReader
from upriver.readside.tags import TagsReader

NS, NAME = "postgres://db:5432", "public/orders #1 %x"  # a name with every character identity escapes
JOB_NS, JOB = "dbt://shop", "shop.orders:build"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GOLDEN = Path(__file__).resolve().parents[2] / "schemas" / "golden"


def change(op: str, entity: str, tag: str, at: int, *, ns: str = NS, name: str = NAME, field: str | None = None,
           description: str | None = None) -> dict[str, Any]:  # fmt: skip
    if entity == "TAG":
        ns = name = ""
    return {"change_id": str(uuid.uuid4()), "op": op, "entity": entity, "namespace": ns, "name": name,
            "field": field, "tag": tag, "description": description, "changed_at": at, "source": "test"}  # fmt: skip


class Store:
    """Inserts changes as the sink does: each encoded and decoded with the topic's codec, then made a row at
    its own (partition, offset)."""

    def __init__(self, client: Client, database: str) -> None:
        self.writer = ClickHouseWriter(client, database)
        self.codec = SingleObjectCodec("tag_change")
        self.offsets = itertools.count()

    def add(self, *changes: dict[str, Any], partition: int = 0) -> None:
        rows = [tag_change_row(self.codec.decode(self.codec.encode(tag_record(c))), partition, next(self.offsets))
                for c in changes]  # fmt: skip
        self.writer.insert(TAG_CHANGES.name, rows, TAG_CHANGES.columns, TAG_CHANGES.types, f"t{uuid.uuid4()}")


@pytest.fixture
def store(ch_client: Client, ch_database: str) -> Store:
    return Store(ch_client, ch_database)


@pytest.fixture
def reader(ch_client: Client, ch_database: str) -> TagsReader:
    return TagsReader(ch_client, ch_database)


def test_the_last_change_per_tag_wins_and_a_remove_takes_it_off(store: Store, reader: TagsReader) -> None:
    store.add(
        change("ADD", "DATASET", "pii", T0 + 1),
        change("REMOVE", "DATASET", "pii", T0 + 2),
        change("ADD", "DATASET", "pii", T0 + 3),  # added again: on
        change("ADD", "DATASET", "gold", T0 + 1),
        change("REMOVE", "DATASET", "gold", T0 + 5),  # removed last: off
        change("REMOVE", "DATASET", "never-added", T0 + 1),
        change("ADD", "DATASET", "other", T0, name="public/orders"),  # another dataset
    )
    # later changes stored first (another batch, a lower offset): changed_at still orders them
    store.add(change("REMOVE", "DATASET", "late", T0 + 9), partition=1)
    store.add(change("ADD", "DATASET", "late", T0 + 8), partition=1)
    assert reader.dataset_tags(NS, NAME) == ["pii"]
    assert reader.dataset_tags(NS, "public/orders") == ["other"]
    assert reader.dataset_tags(NS, "no such dataset") == []


def test_same_millisecond_changes_follow_kafka_order(store: Store, reader: TagsReader) -> None:
    store.add(change("ADD", "JOB", "a", T0, ns=JOB_NS, name=JOB), change("REMOVE", "JOB", "a", T0, ns=JOB_NS, name=JOB))
    store.add(change("REMOVE", "JOB", "b", T0, ns=JOB_NS, name=JOB), change("ADD", "JOB", "b", T0, ns=JOB_NS, name=JOB))
    assert reader.job_tags(JOB_NS, JOB) == ["b"]


def test_field_tags_per_field_apart_from_the_dataset_and_job_tags(store: Store, reader: TagsReader) -> None:
    store.add(
        change("ADD", "FIELD", "PII", T0, field="email"),
        change("ADD", "FIELD", "SENSITIVE", T0, field="email"),
        change("ADD", "FIELD", "PII", T0, field="customer id"),
        change("REMOVE", "FIELD", "PII", T0 + 1, field="customer id"),  # its only tag removed: not listed
        change("ADD", "FIELD", "PII", T0, field="a#b/c"),
        change("ADD", "DATASET", "gold", T0),
        change("ADD", "JOB", "nightly", T0, ns=NS, name=NAME),  # a job of the same name: its own tags
    )
    assert reader.field_tags(NS, NAME) == {"email": ["PII", "SENSITIVE"], "a#b/c": ["PII"]}
    assert reader.dataset_tags(NS, NAME) == ["gold"]
    assert reader.job_tags(NS, NAME) == ["nightly"]
    assert reader.job_tags(JOB_NS, JOB) == []


def _event(run: str, second: int, dataset_facets: dict[str, Any], job_facets: dict[str, Any]) -> dict[str, Any]:
    """A dbt-ol COMPLETE event (the shape of tests/fixtures/openlineage-corpus/dbt-postgres-duckdb.ndjson)
    with OpenLineage tags facets on its output dataset and its job (TagsDatasetFacet, TagsJobFacet)."""
    producer = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt"
    return {
        "eventType": "COMPLETE", "eventTime": f"2026-01-01T00:00:{second:02d}Z", "producer": producer,
        "run": {"runId": run}, "job": {"namespace": JOB_NS, "name": JOB, "facets": job_facets},
        "inputs": [], "outputs": [{"namespace": NS, "name": NAME, "facets": dataset_facets}],
    }  # fmt: skip


def _tags(*entries: dict[str, str]) -> dict[str, Any]:
    return {"tags": {"_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt",
                     "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/TagsDatasetFacet.json",
                     "tags": list(entries)}}  # fmt: skip


def test_facet_tags_are_merged_and_the_newest_facet_counts(
    ch_client: Client, ch_database: str, store: Store, reader: TagsReader
) -> None:
    old = _tags({"key": "stale", "value": "true", "source": "DBT"})
    new = _tags({"key": "finance", "value": "true", "source": "DBT"},
                {"key": "pii", "value": "true", "source": "DBT", "field": "email"})  # fmt: skip
    job = _tags({"key": "nightly", "value": "true", "source": "DBT"})
    events = [
        _event(str(uuid.UUID(int=1)), 1, old, {}),
        _event(str(uuid.UUID(int=2)), 2, new, job),
        _event(str(uuid.UUID(int=3)), 3, {}, {}),  # a newer run with no tags facet hides none
    ]
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in events], derived_at=0)
    store.add(change("ADD", "DATASET", "gold", T0), change("ADD", "FIELD", "SENSITIVE", T0, field="email"))
    assert reader.dataset_tags(NS, NAME) == ["finance", "gold"]
    assert reader.field_tags(NS, NAME) == {"email": ["SENSITIVE", "pii"]}
    assert reader.job_tags(JOB_NS, JOB) == ["nightly"]
    # the API removes facet tags: after the facet's run they are off, a remove before it does not count
    store.add(change("REMOVE", "DATASET", "finance", T0 + 2_000),  # the run's time: off
              change("REMOVE", "FIELD", "pii", T0 + 1_999, field="email"),  # before the run: still on
              change("REMOVE", "JOB", "nightly", T0 + 60_000, ns=JOB_NS, name=JOB))  # fmt: skip
    assert reader.dataset_tags(NS, NAME) == ["gold"]
    assert reader.field_tags(NS, NAME) == {"email": ["SENSITIVE", "pii"]}
    assert reader.job_tags(JOB_NS, JOB) == []
    # the LineageReader carries one
    assert LineageReader(ch_client, ch_database).tags.dataset_tags(NS, NAME) == ["gold"]


def test_defined_tags_with_the_last_description_a_put_gave(store: Store, reader: TagsReader) -> None:
    store.add(
        change("DEFINE", "TAG", "PII", T0, description="Personally identifiable information"),
        change("DEFINE", "TAG", "PII", T0 + 1),  # a PUT without a description keeps it
        change("DEFINE", "TAG", "SENSITIVE", T0, description="old"),
        change("DEFINE", "TAG", "SENSITIVE", T0 + 5, description="Contains sensitive information"),
        change("DEFINE", "TAG", "empty", T0, description="x"),
        change("DEFINE", "TAG", "empty", T0 + 1, description=""),  # set to empty: empty
        change("ADD", "DATASET", "gold", T0),  # tagging defines it, with no description
        change("REMOVE", "DATASET", "gold", T0 + 1),  # and untagging keeps it defined
        change("REMOVE", "DATASET", "only-removed", T0),  # a remove defines nothing
        change("ADD", "FIELD", "PII", T0 + 2, field="email"),
    )
    assert reader.defined() == [
        {"name": "PII", "description": "Personally identifiable information"},
        {"name": "SENSITIVE", "description": "Contains sensitive information"},
        {"name": "empty", "description": ""},
        {"name": "gold", "description": None},
    ]
    assert reader.tag("gold") == {"name": "gold", "description": None}
    assert reader.tag("only-removed") is None


def test_acknowledged_changes_show_until_loaded_then_expire(store: Store, ch_client: Client, ch_database: str) -> None:
    now = [100.0]
    reader = TagsReader(ch_client, ch_database, clock=lambda: now[0])
    store.add(change("ADD", "DATASET", "pii", T0))
    removed = change("REMOVE", "DATASET", "pii", T0 + 1)
    added = change("ADD", "FIELD", "PII", T0 + 1, field="email")
    defined = change("DEFINE", "TAG", "fresh", T0 + 1, description="just made")
    for c in (removed, added, defined):
        reader.acknowledged(c)
    assert reader.dataset_tags(NS, NAME) == []
    assert reader.field_tags(NS, NAME) == {"email": ["PII"]}
    assert {"name": "fresh", "description": "just made"} in reader.defined()
    store.add(removed, added)  # the sink loaded two of them: the same answers (one change, by its id)
    assert (reader.dataset_tags(NS, NAME), reader.field_tags(NS, NAME)) == ([], {"email": ["PII"]})
    now[0] += tags_mod.PENDING_S + 1  # expired: only what is stored counts
    assert reader.dataset_tags(NS, NAME) == [] and reader.field_tags(NS, NAME) == {"email": ["PII"]}
    assert [t["name"] for t in reader.defined()] == ["PII", "pii"]


def test_tag_change_golden_payload_still_decodes() -> None:
    """A v1 TagChange payload (schemas/golden/tag_change.v1.bin) must decode forever, with its key rule."""
    payload = (GOLDEN / "tag_change.v1.bin").read_bytes()
    decoded = SingleObjectCodec("tag_change").decode(payload)
    source = "POST /api/v1/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"
    assert decoded == {"change_id": "5f0c7a52-8d1e-4b7e-9a43-1f2e3d4c5b6a", "op": "ADD", "entity": "FIELD",
                       "namespace": "postgres://db:5432", "name": "public.orders", "field": "email", "tag": "PII",
                       "description": None, "changed_at": 1767225600123, "source": source}  # fmt: skip
    assert tag_key(decoded) == b"dataset:postgres://db:5432/public.orders#email"
