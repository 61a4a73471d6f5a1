"""processors/worker/app.py ChangelogWriter: changelog records are byte for byte what faust's own table write
would send (so faust's recovery reads them back), and the direct JSON path is the one taken."""

from __future__ import annotations

import tempfile
from typing import Any

import faust

from processors.worker.app import CHANGELOG_SAMPLE_VALUES, ChangelogWriter, _json_bytes


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    def publish(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        self.sent.append((topic, key, value, partition))


VALUES: list[Any] = [
    *CHANGELOG_SAMPLE_VALUES,
    {"run_id": "r-1", "inputs": [["DATASET", "s3://lake", "a/b", None]], "u": 1767225600123, "p": 3},
    {"name": 'tab\tnewline\nquote"back\\slash', "emoji": "\U0001f600", "neg": -0.0, "big": 2**63},
    [],
    "plain",
    None,
]


def test_changelog_records_are_the_bytes_faust_itself_writes_and_the_direct_path_is_used() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = faust.App("changelog-writer-test", broker="kafka://127.0.0.1:9", store="memory://", datadir=tmp)
        table = app.Table("state", default=None, partitions=4, key_type=str)
        out = Recording()
        writer = ChangelogWriter(table, out)  # type: ignore[arg-type]
        assert writer._value is _json_bytes and writer._key is _json_bytes  # the fast path, not faust's
        topic = table.changelog_topic
        for i, value in enumerate(VALUES):
            key = f"k:{i}:é"
            writer.set(i % 4, key, value)
            expected_key = bytes(topic.prepare_key(key, table.key_serializer)[0])
            expected_value = bytes(topic.prepare_value(value, table.value_serializer)[0])
            assert out.sent[-1] == (topic.get_topic_name(), expected_key, expected_value, i % 4)
            assert writer.get(key) == value
        writer.delete(1, "k:1:é")
        assert out.sent[-1][2] is None and writer.get("k:1:é") is None
