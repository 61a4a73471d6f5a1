"""The tags topic: what `TagWrites` (upriver/http/tags.py) sends to it (a checked TagChange, keyed by its
entity, through the ingest's producer; Kafka's refusal a 503), and, being the only record of the Marquez
tag writes, kept forever wherever it is made: `upriver.deploy.kafka.ensure_topics` (the local stack, the
fault harness) and compose's init-topics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import topics
from schemas.codec import SingleObjectCodec
from upriver.deploy import kafka
from upriver.http.api import ApiError
from upriver.http.ingest import IngestError
from upriver.http.tags import TagWrites, tag_key, tag_record
from upriver.settings import Topics

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


class _Future:
    def result(self) -> None:
        return None


def test_ensure_topics_keeps_only_the_tags_topic_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, dict[str, str]] = {}

    class Admin:
        def __init__(self, _config: dict[str, Any]) -> None:
            pass

        def create_topics(self, wanted: list[Any], operation_timeout: float) -> dict[str, _Future]:
            asked.update({t.topic: dict(t.config) for t in wanted})
            return {t.topic: _Future() for t in wanted}

    monkeypatch.setattr(kafka, "AdminClient", Admin)
    names = Topics.unique("x")
    kafka.ensure_topics({}, names)
    assert set(asked) == set(names.names())
    assert asked[names.tags] == {"max.message.bytes": kafka.TOPIC_CONFIG["max.message.bytes"], "retention.ms": "-1"}
    assert all("retention.ms" not in config for name, config in asked.items() if name != names.tags)


def test_compose_creates_the_tags_topic_and_keeps_it_forever() -> None:
    script = " ".join(yaml.safe_load(COMPOSE.read_text())["services"]["init-topics"]["command"])
    loop = re.search(r"for t in ([^;]+);", script)
    assert loop is not None and topics.TAGS in loop.group(1).split()
    kept = rf"kafka-configs\.sh .*--entity-name {re.escape(topics.TAGS)} --add-config retention\.ms=-1"
    assert re.search(kept, script)


def _change(**kw: Any) -> dict[str, Any]:
    base = {"change_id": "c1", "op": "ADD", "entity": "DATASET", "namespace": "s3://b", "name": "a/b#c%d",
            "field": None, "tag": "PII", "changed_at": 1}  # fmt: skip
    return {**base, **kw}


class _Ingest:
    def __init__(self, error: IngestError | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.error = error

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((topic, key, value))


def test_tag_writes_send_the_checked_record_keyed_by_its_entity() -> None:
    ingest, codec = _Ingest(), SingleObjectCodec("tag_change")
    writes = TagWrites(ingest, "upriver.tags.v1.t", codec)
    writes.tag_change(_change())
    writes.tag_change(_change(change_id="c2", entity="FIELD", field="e#mail"))
    writes.tag_change(_change(change_id="c3", op="REMOVE", entity="JOB", namespace="dbt://x", name="j/1"))
    writes.tag_change(_change(change_id="c4", op="DEFINE", entity="TAG", namespace="", name="", description="d"))
    assert [(t, k) for t, k, _ in ingest.sent] == [
        ("upriver.tags.v1.t", b"dataset:s3://b/a%2Fb%23c%25d"),  # schemas/identity.py's escapes
        ("upriver.tags.v1.t", b"dataset:s3://b/a%2Fb%23c%25d#e#mail"),
        ("upriver.tags.v1.t", b"job:dbt://x/j%2F1"),
        ("upriver.tags.v1.t", b"tag:PII"),
    ]
    decoded = [codec.decode(v) for _, _, v in ingest.sent]
    assert [(d["change_id"], d["op"], d["field"], d["description"], d["source"]) for d in decoded] == [
        ("c1", "ADD", None, None, None), ("c2", "ADD", "e#mail", None, None), ("c3", "REMOVE", None, None, None),
        ("c4", "DEFINE", None, "d", None)]  # fmt: skip
    assert decoded[0]["name"] == "a/b#c%d"  # the record keeps the name as sent


@pytest.mark.parametrize(
    "change",
    [_change(op="RENAME"), _change(entity="RUN"), _change(op="DEFINE"), _change(entity="FIELD"),
     _change(field="f"), _change(tag=None), _change(changed_at="now"), _change(tag="\ud800")],
)  # fmt: skip
def test_a_change_that_is_not_one_is_refused_before_kafka(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="tag change"):
        tag_record(change)


def test_kafka_refusing_is_a_503() -> None:
    ingest = _Ingest(IngestError(503, "Kafka did not acknowledge"))
    writes = TagWrites(ingest, "t", SingleObjectCodec("tag_change"))
    with pytest.raises(ApiError) as info:
        writes.tag_change(_change())
    assert (info.value.status, str(info.value)) == (503, "Kafka did not acknowledge")
    assert tag_key(tag_record(_change())) == b"dataset:s3://b/a%2Fb%23c%25d"
