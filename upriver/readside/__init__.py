"""The read side: lineage walks, health and stats read from ClickHouse, apart from HTTP."""
