"""Pure tests of sinks/rows.py: record -> row conversion and the declared table layouts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.codec import make_codec
from schemas.model import DeadLetter, Edge
from sinks.rows import DEAD_LETTERS, EDGES, LAYOUTS, RowError, dead_letter_row, edge_row, utc_from_millis


def _edge(**kw: object) -> Edge:
    base: dict[str, object] = dict(
        src="dataset:wh/features",
        dst="model:ml/churn",
        edge_type="TRAINED_ON",
        run_id="run-1",
        job="ml/train",
        event_id="ev-1",
        event_time=1_700_000_000_123,
        derived_at=1_700_000_000_999,
    )
    base.update(kw)
    return Edge(**base)  # type: ignore[arg-type]


def test_edge_row_follows_layout_order() -> None:
    row = edge_row(_edge(src_version="v1").to_record(), 3, 42)
    assert len(row) == len(EDGES.columns)
    by_name = dict(zip(EDGES.columns, row, strict=True))
    assert by_name["src"] == "dataset:wh/features"
    assert by_name["dst"] == "model:ml/churn"
    assert by_name["edge_type"] == "TRAINED_ON"
    assert by_name["src_version"] == "v1"
    assert by_name["dst_version"] is None
    assert by_name["event_time"] == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert by_name["derived_at"] == datetime(2023, 11, 14, 22, 13, 20, 999000, tzinfo=UTC)
    assert (by_name["kafka_partition"], by_name["kafka_offset"]) == (3, 42)


def test_edge_row_from_decoded_payload() -> None:
    codec = make_codec("edge")
    record = codec.decode(codec.encode(_edge().to_record()))
    assert edge_row(record, 0, 0) == edge_row(_edge().to_record(), 0, 0)


def test_dead_letter_row_keeps_bytes() -> None:
    dl = DeadLetter("UNDECODABLE", "bad magic", "processor", "upriver.events.v1", 2, 99, b"\x00\xff", 0, b"k")
    row = dead_letter_row(dl.to_record(), 1, 5)
    by_name = dict(zip(DEAD_LETTERS.columns, row, strict=True))
    assert by_name["payload"] == b"\x00\xff"
    assert by_name["key"] == b"k"
    assert by_name["failed_at"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert (by_name["source_partition"], by_name["source_offset"]) == (2, 99)
    assert (by_name["kafka_partition"], by_name["kafka_offset"]) == (1, 5)


def test_millis_are_exact() -> None:
    # Float division would turn some millisecond values into ...999 microseconds.
    for ms in (1_700_000_000_001, 1_234_567_890_123, 0, -1):
        dt = utc_from_millis(ms)
        assert dt.microsecond % 1000 == 0
        assert round(dt.timestamp() * 1000) == ms


@pytest.mark.parametrize("bad", [{"src": "a"}, {**_edge().to_record(), "event_time": "yesterday"}])
def test_bad_edge_record_raises_row_error(bad: dict[str, object]) -> None:
    with pytest.raises(RowError):
        edge_row(bad, 0, 0)


def test_layouts_are_consistent() -> None:
    for name, layout in LAYOUTS.items():
        assert layout.name == name
        assert len(layout.columns) == len(layout.types) == len(set(layout.columns))
        assert "inserted_at" not in layout.columns
        assert layout.columns[-2:] == ("kafka_partition", "kafka_offset")
