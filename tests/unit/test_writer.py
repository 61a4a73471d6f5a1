"""ClickHouseWriter on embedded ClickHouse: dedup token, stored offsets, error translation."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from sinks.rows import EDGES, Row, edge_row
from sinks.writer import ClickHouseWriter, PermanentSinkError, RetryableSinkError, translate


def _rows(partition: int, offsets: range) -> list[Row]:
    record = {
        "src": "dataset:a/b",
        "dst": "model:c/d",
        "edge_type": "TRAINED_ON",
        "run_id": "r",
        "job": "j",
        "event_id": "e",
        "event_time": 1,
        "derived_at": 2,
    }
    return [edge_row({**record, "run_id": f"r{o}"}, partition, o) for o in offsets]


def _count(client: Client, database: str) -> int:
    return int(client.query(f"SELECT count() FROM `{database}`.edges").result_rows[0][0])


def test_same_token_twice_stores_once(ch_client: Client, ch_database: str) -> None:
    writer = ClickHouseWriter(ch_client, ch_database)
    rows = _rows(0, range(100))
    writer.insert("edges", rows, EDGES.columns, EDGES.types, "edges:0:0-99")
    writer.insert("edges", rows, EDGES.columns, EDGES.types, "edges:0:0-99")
    assert _count(ch_client, ch_database) == 100
    writer.insert("edges", rows, EDGES.columns, EDGES.types, "edges:0:0-99-other")
    assert _count(ch_client, ch_database) == 200


def test_max_offsets_per_partition(ch_client: Client, ch_database: str) -> None:
    writer = ClickHouseWriter(ch_client, ch_database)
    assert writer.max_offsets("edges") == {}
    writer.insert("edges", _rows(0, range(10)), EDGES.columns, EDGES.types, "a")
    writer.insert("edges", _rows(2, range(5, 8)), EDGES.columns, EDGES.types, "b")
    assert writer.max_offsets("edges") == {0: 9, 2: 7}
    assert writer.max_offsets("dead_letters") == {}


def test_empty_insert_is_a_no_op(ch_client: Client, ch_database: str) -> None:
    ClickHouseWriter(ch_client, ch_database).insert("edges", [], EDGES.columns, EDGES.types, "t")
    assert _count(ch_client, ch_database) == 0


def test_missing_table_is_permanent(ch_client: Client, ch_database: str) -> None:
    writer = ClickHouseWriter(ch_client, ch_database)
    with pytest.raises(PermanentSinkError, match="migrations"):
        writer.max_offsets("no_such_table")


def test_translate_tells_retryable_from_permanent() -> None:
    assert isinstance(translate(OperationalError("connection refused"), "x"), RetryableSinkError)
    assert isinstance(translate(DatabaseError("too many parts", code=252), "x"), RetryableSinkError)
    assert isinstance(translate(ProgrammingError("syntax", code=62), "x"), PermanentSinkError)
