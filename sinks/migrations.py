"""Versioned ClickHouse DDL: applies `sinks/ddl/*.sql` in name order, once each, per database.

Only creates; never drops or rewrites a table. A DDL file may hold several statements split on `;`
(so no `;` inside string literals); full-line `--` comments are removed first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sinks.clickhouse import Client, quote_identifier

log = logging.getLogger(__name__)

DDL_DIR = Path(__file__).parent / "ddl"


def statements(sql: str) -> list[str]:
    """The statements of one DDL file: comment lines dropped, split on `;`, blanks skipped."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def apply_migrations(client: Client, database: str, ddl_dir: Path = DDL_DIR) -> list[str]:
    """Create `database` if missing and apply the DDL files it has not seen; returns the names applied."""
    db = quote_identifier(database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    # ReplacingMergeTree: two processes migrating at once record a file twice, harmlessly.
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY name"
    )
    done = {row[0] for row in client.query(f"SELECT name FROM {db}.schema_migrations").result_rows}
    applied: list[str] = []
    for path in sorted(ddl_dir.glob("*.sql")):
        if path.name in done:
            continue
        # Every statement is CREATE ... IF NOT EXISTS, so a crash half-way through a file is re-run safely.
        for stmt in statements(path.read_text().replace("{db}", db)):
            client.command(stmt)
        client.insert(
            "schema_migrations",
            [(path.name,)],
            column_names=["name"],
            database=database,
            column_type_names=["String"],
        )
        log.info("applied migration %s to database %s", path.name, database)
        applied.append(path.name)
    return applied
