"""Migrations on embedded ClickHouse: applied once, idempotent, and the tables match sinks/rows.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from schemas.identity import node_id
from sinks.migrations import DDL_DIR, apply_migrations, statements
from sinks.rows import LAYOUTS
from upriver.readside.lineage import LineageReader


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
        "lineage_events": "inserted_at",
        "tag_changes": "inserted_at",
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


def test_ids_written_with_the_old_grammar_are_rewritten(ch_client: Client, tmp_path: Path) -> None:
    """Rows stored before schemas/identity.py (kind:namespace/name unescaped) get the new ids: runs, edges,
    nodes, alerts; the read side then finds the nodes under the names the producer sent."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    old_ddl = tmp_path / "ddl"
    old_ddl.mkdir()
    for path in sorted(DDL_DIR.glob("*.sql"))[:4]:
        (old_ddl / path.name).write_text(path.read_text())
    duck, table = "dataset:duckdb:///tmp/x/shop.duckdb/shop.main.orders", "dataset:s3://lake//warehouse/t"
    try:
        apply_migrations(ch_client, database, old_ddl)
        t = "toDateTime64('2026-01-01 00:00:00', 3, 'UTC')"
        ch_client.command(
            f"INSERT INTO `{database}`.runs (run_id, revision, job_namespace, job_name, job_kind, status, started_at,"
            " input_ids, input_kinds, input_versions, input_facets, output_ids, output_kinds, output_versions,"
            f" output_facets, facets, updated_at, kafka_partition, kafka_offset) VALUES ('r1', 2, 'spark://c', 'etl',"
            f" 'OTHER', 'COMPLETE', {t}, ['{duck}'], ['DATASET'], [''], [''], ['{table}'], ['DATASET'], [''], [''],"
            f" '{{}}', {t}, 0, 0)"
        )
        ch_client.command(
            f"INSERT INTO `{database}`.edges (src, dst, edge_type, run_id, job, event_id, event_time, derived_at,"
            f" valid_from, kafka_partition, kafka_offset) VALUES ('{duck}', '{table}', 'DERIVED_FROM', 'r1',"
            f" 'spark://c/etl', 'e', {t}, {t}, {t}, 0, 0), ('{duck}#id', '{table}#id', 'COLUMN_DIRECT', 'r1',"
            f" 'spark://c/etl', 'e', {t}, {t}, {t}, 0, 1)"
        )
        assert apply_migrations(ch_client, database) == sorted(p.name for p in DDL_DIR.glob("*.sql"))[4:]
        reader = LineageReader(ch_client, database)
        new_duck = node_id("DATASET", "duckdb:///tmp/x/shop.duckdb", "shop.main.orders")
        new_table = node_id("DATASET", "s3://lake", "/warehouse/t")
        assert set(reader.downstream(new_duck, depth=1).nodes) == {new_duck, new_table}
        assert set(reader.upstream(f"{new_table}#id", depth=1).nodes) == {f"{new_table}#id", f"{new_duck}#id"}
        node = reader.node(new_table)
        assert (node["namespace"], node["name"], node["producing_job"]) == (
            "s3://lake",
            "/warehouse/t",
            "job:spark://c/etl",
        )
        assert reader.job("job:spark://c/etl")["outputs"] == [new_table]
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS `{database}`")
