"""How long the raw OpenLineage events are kept: the `lineage_events` table's TTL, set by the sink at start.

`sinks/ddl/006_lineage_events.sql` creates the table with a 30-day TTL on `received_at`; `apply_retention`
changes it to the configured number of days (UPRIVER_RAW_EVENT_RETENTION_DAYS; 0 keeps the events forever)
only when it differs, since ClickHouse rewrites the table's parts when a TTL changes.
"""

from __future__ import annotations

import logging
import re

from sinks.clickhouse import Client, quote_identifier

log = logging.getLogger(__name__)

TABLE = "lineage_events"
_TTL = re.compile(r"\bTTL toDateTime\(received_at\) \+ toIntervalDay\((\d+)\)")


def current_retention(client: Client, database: str) -> int:
    """The table's TTL in days, as ClickHouse shows it; 0 when it has none."""
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": TABLE},
    ).result_rows
    if not rows:
        raise RuntimeError(f"{database}.{TABLE} does not exist: apply the migrations (sinks.migrations) first")
    found = _TTL.search(str(rows[0][0]))
    return int(found.group(1)) if found else 0


def apply_retention(client: Client, database: str, days: int) -> bool:
    """Set the raw events' TTL to `days` days after their arrival (0: none); True when it was changed."""
    if days < 0:
        raise ValueError(f"UPRIVER_RAW_EVENT_RETENTION_DAYS must be >= 0 (0 keeps raw events forever), got {days}")
    if current_retention(client, database) == days:
        return False
    table = f"{quote_identifier(database)}.{TABLE}"
    if days == 0:
        client.command(f"ALTER TABLE {table} REMOVE TTL")
    else:
        client.command(f"ALTER TABLE {table} MODIFY TTL toDateTime(received_at) + INTERVAL {int(days)} DAY")
    log.info("raw OpenLineage events in %s are kept %s", table, f"{days} days" if days else "forever")
    return True
