"""processors/worker/app.py ChangelogWriter: changelog records are byte for byte what faust's own table write
would send (so faust's recovery reads them back), and the direct JSON path is the one taken."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import faust
import pytest
from cramjam import lz4

from processors.worker.app import CHANGELOG_SAMPLE_VALUES, ChangelogWriter, _json_bytes, evict


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


@pytest.mark.parametrize("pack", ["json", "lz4"])
def test_a_packed_store_holds_the_record_bytes_and_reads_back_what_was_written(pack: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = faust.App("changelog-writer-packed", broker="kafka://127.0.0.1:9", store="memory://", datadir=tmp)
        table = app.Table("state", default=None, partitions=4, key_type=str)
        out = Recording()
        writer = ChangelogWriter(table, out, pack=pack)  # type: ignore[arg-type]
        for i, value in enumerate(VALUES):
            key = f"k:{i}"
            writer.set(i % 4, key, value)
            record = out.sent[-1][2]
            assert record is not None and json.loads(record) == value  # the changelog record: JSON, as before
            # the store holds the record's own bytes, or those bytes compressed
            assert table.data[key] == (bytes(lz4.compress_block(record)) if pack == "lz4" else record)
            assert writer.get(key) == value
        # faust's recovery stores decoded values: read as they are, then packed in place, order kept
        table.data["recovered"] = {"u": 5, "p": 1, "ids": ["a"]}
        writer.set(2, "k:0", VALUES[0])  # to the end of the last-update order
        order = list(table.data)
        assert writer.get("recovered") == {"u": 5, "p": 1, "ids": ["a"]}
        assert sum(writer.pack_recovered()) == 1 and sum(writer.pack_recovered()) == 0
        assert list(table.data) == order and isinstance(table.data["recovered"], bytes)
        assert writer.get("recovered") == {"u": 5, "p": 1, "ids": ["a"]}
        # entries: the front of the last-update order, decoded
        assert [k for k, _ in writer.entries(2)] == order[:2]
        assert dict(writer.entries(len(order))) == {k: writer.get(k) for k in order}


def test_keys_only_store_is_not_packed() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = faust.App("changelog-writer-keys", broker="kafka://127.0.0.1:9", store="memory://", datadir=tmp)
        table = app.Table("state", default=None, partitions=4, key_type=str)
        writer = ChangelogWriter(table, Recording(), keep_values=False, pack="json")  # type: ignore[arg-type]
        writer.set(0, "a", {"x": 1})
        table.data["b"] = {"y": 2}
        assert table.data["a"] is True and sum(writer.pack_recovered()) == 0 and table.data["b"] == {"y": 2}


def test_eviction_reads_packed_and_recovered_entries_and_tombstones_them_on_their_partition() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = faust.App("changelog-writer-evict", broker="kafka://127.0.0.1:9", store="memory://", datadir=tmp)
        seen_table = app.Table("dedup", default=None, partitions=4, key_type=str)
        run_table = app.Table("runs", default=None, partitions=4, key_type=str)
        out = Recording()
        seen = ChangelogWriter(seen_table, out, pack="json")  # type: ignore[arg-type]
        run_states = ChangelogWriter(run_table, out, pack="lz4")  # type: ignore[arg-type]
        seen_table.data["e-recovered"] = [2, 10, 1_000]  # as faust's recovery stores it: decoded
        seen.set(3, "e-old", [3, 11, 1_500])
        seen.set(1, "e-live", [1, 12, 9_000])
        run_states.set(1, "r-old", {"run_id": "r-old", "u": 1_200, "p": 1})
        run_table.data["r-live"] = {"run_id": "r-live", "u": 8_500, "p": 2}
        out.sent.clear()
        assert evict(seen, run_states, now=10_000, retention_ms=5_000) == (2, 1)
        assert list(seen_table.data) == ["e-live"] and list(run_table.data) == ["r-live"]
        tombstones = {(topic, key, partition) for topic, key, value, partition in out.sent if value is None}
        assert len(tombstones) == len(out.sent) == 3
        assert {(k, p) for _, k, p in tombstones} == {(b'"e-recovered"', 2), (b'"e-old"', 3), (b'"r-old"', 1)}


def test_an_unknown_pack_is_refused() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = faust.App("changelog-writer-bad", broker="kafka://127.0.0.1:9", store="memory://", datadir=tmp)
        table = app.Table("state", default=None, partitions=4, key_type=str)
        with pytest.raises(ValueError, match="pack"):
            ChangelogWriter(table, Recording(), pack="gzip")  # type: ignore[arg-type]


def test_packing_goes_a_chunk_at_a_time_and_skips_what_changed_in_between() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = faust.App("changelog-writer-chunks", broker="kafka://127.0.0.1:9", store="memory://", datadir=tmp)
        table = app.Table("state", default=None, partitions=4, key_type=str)
        writer = ChangelogWriter(table, Recording(), pack="lz4")  # type: ignore[arg-type]
        for i in range(10):
            table.data[f"k{i}"] = {"i": i}  # as recovery stores them
        chunks = writer.pack_recovered(chunk=4)
        assert next(chunks) == 4  # k0..k3
        del table.data["k5"]  # between chunks: the handlers ran
        writer.set(0, "k6", {"i": 60})
        assert list(chunks) == [2, 2]  # k4, k7 | k8, k9 (k5 gone, k6 bytes already)
        assert "k5" not in table.data and all(isinstance(v, bytes) for v in table.data.values())
        assert writer.get("k6") == {"i": 60} and writer.get("k9") == {"i": 9}
