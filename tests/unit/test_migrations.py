"""Migrations on embedded ClickHouse: applied once, idempotent, and the tables match sinks/rows.py."""

from __future__ import annotations

import uuid

import pytest
from clickhouse_connect.driver.client import Client

from sinks.migrations import DDL_DIR, apply_migrations, statements
from sinks.rows import LAYOUTS


def test_fresh_database_gets_every_file_once(ch_client: Client) -> None:
    database = f"t_{uuid.uuid4().hex[:12]}"
    try:
        names = sorted(p.name for p in DDL_DIR.glob("*.sql"))
        assert apply_migrations(ch_client, database) == names
        assert apply_migrations(ch_client, database) == []
        recorded = ch_client.query(f"SELECT name FROM `{database}`.schema_migrations ORDER BY name")
        assert [r[0] for r in recorded.result_rows] == names
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS `{database}`")


def test_tables_match_declared_layouts(ch_client: Client, ch_database: str) -> None:
    for table, layout in LAYOUTS.items():
        result = ch_client.query(
            "SELECT name, type, default_kind FROM system.columns "
            "WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            parameters={"db": ch_database, "t": table},
        )
        # inserted_at is the server's; columns added by a later ALTER carry a DEFAULT for old rows but
        # the sink still writes them, so they are part of the layout.
        written = [(n, t) for n, t, _ in result.result_rows if n != "inserted_at"]
        assert written == list(zip(layout.columns, layout.types, strict=True)), table
        server = {(n, t, kind) for n, t, kind in result.result_rows if n == "inserted_at"}
        assert server == {("inserted_at", "DateTime64(3, 'UTC')", "DEFAULT")}, table


def test_tables_have_dedup_window_and_projection(ch_client: Client, ch_database: str) -> None:
    versions = {
        "edges": "inserted_at",
        "dead_letters": "inserted_at",
        "runs": "revision",
        "health": "inserted_at",
        "alerts": "updated_at",
        "drift_links": "inserted_at",
    }
    assert set(versions) == set(LAYOUTS)
    for table, version in versions.items():
        ddl = ch_client.command(f"SHOW CREATE TABLE `{ch_database}`.`{table}`")
        assert isinstance(ddl, str)
        assert f"ReplacingMergeTree({version})" in ddl
        assert "non_replicated_deduplication_window = 1000" in ddl
    projections = ch_client.query(
        "SELECT name FROM system.projections WHERE database = {db:String} AND table = 'edges'",
        parameters={"db": ch_database},
    )
    assert [r[0] for r in projections.result_rows] == ["by_dst_v2"]


def test_upstream_query_reads_the_dst_projection(ch_client: Client, ch_database: str) -> None:
    # Enough rows in many granules that reading by dst through the projection beats a full scan.
    ch_client.command(
        f"INSERT INTO `{ch_database}`.edges (src, dst, edge_type, run_id, job, event_id, event_time, "
        "derived_at, kafka_partition, kafka_offset) "
        "SELECT toString(number), toString(number * 7919 % 100000), 'X', 'r', 'j', 'e', 0, 0, 0, number "
        "FROM numbers(100000)"
    )
    plan = ch_client.query(
        f"EXPLAIN SELECT src, dst, edge_type FROM `{ch_database}`.edges "
        "WHERE dst IN {f:Array(String)} GROUP BY src, dst, edge_type",
        parameters={"f": ["7919"]},
    )
    assert any("by_dst_v2" in r[0] for r in plan.result_rows)


def test_statements_split_and_drop_comments() -> None:
    sql = "-- a; comment\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\n-- tail\nCREATE TABLE b (y UInt8)\n;\n"
    assert statements(sql) == [
        "CREATE TABLE a (x UInt8) ENGINE = Memory",
        "CREATE TABLE b (y UInt8)",
    ]


def test_bad_database_name_is_refused(ch_client: Client) -> None:
    with pytest.raises(ValueError, match="identifier"):
        apply_migrations(ch_client, "x; DROP DATABASE system")
