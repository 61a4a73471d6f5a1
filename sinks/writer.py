"""The sink's row-writer port (`RowWriter`) and its clickhouse-connect adapter (`ClickHouseWriter`).

Translates clickhouse-connect errors into retryable vs permanent sink errors; knows nothing of Kafka.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sinks.clickhouse import ClickHouseError, Client, OperationalError, quote_identifier

# Server error codes that mean "busy or briefly unavailable", not "wrong query or data".
_TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


class SinkError(Exception):
    """A write to the sink's store failed."""


class RetryableSinkError(SinkError):
    """ClickHouse is away or overloaded: retry the same batch with the same dedup token later."""


class PermanentSinkError(SinkError):
    """Retrying will not help (unknown table, wrong columns, bad data): fix the schema or code, restart."""


class RowWriter(Protocol):
    """Where the loader puts rows: idempotent batch inserts plus the stored Kafka positions."""

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        types: Sequence[str],
        dedup_token: str,
    ) -> None:
        """Insert `rows` atomically; a repeat with the same `dedup_token` must store nothing new."""
        ...

    def max_offsets(self, table: str) -> dict[int, int]:
        """Per kafka_partition, the highest kafka_offset stored in `table` (absent: nothing stored)."""
        ...


def translate(exc: ClickHouseError, action: str) -> SinkError:
    """The sink error for a clickhouse-connect failure, telling the caller whether to retry."""
    code = getattr(exc, "code", None)
    if isinstance(exc, OperationalError) or code in _TRANSIENT_CODES:
        return RetryableSinkError(
            f"{action} failed, ClickHouse is unavailable or overloaded; retry the same batch with "
            f"the same dedup token later: {exc}"
        )
    return PermanentSinkError(
        f"{action} failed and retrying will not help; check that migrations ran "
        f"(sinks.migrations.apply_migrations) and the row layout matches the table: {exc}"
    )


class ClickHouseWriter:
    """`RowWriter` over a clickhouse-connect client (chDB or server), tables qualified by `database`."""

    def __init__(self, client: Client, database: str) -> None:
        self._client = client
        self._database = database
        self._db = quote_identifier(database)

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        types: Sequence[str],
        dedup_token: str,
    ) -> None:
        if not rows:
            return
        quote_identifier(table)
        try:
            # Explicit column types: the client does not ask the server for them on every insert.
            self._client.insert(
                table,
                rows,
                column_names=list(columns),
                database=self._database,
                column_type_names=list(types),
                settings={"insert_deduplication_token": dedup_token},
            )
        except ClickHouseError as exc:
            raise translate(exc, f"insert of {len(rows)} rows into {self._database}.{table}") from exc

    def max_offsets(self, table: str) -> dict[int, int]:
        sql = (
            f"SELECT kafka_partition, max(kafka_offset) FROM {self._db}.{quote_identifier(table)} "
            "GROUP BY kafka_partition"
        )
        try:
            result = self._client.query(sql)
        except ClickHouseError as exc:
            raise translate(exc, f"reading stored offsets of {self._database}.{table}") from exc
        return {int(partition): int(offset) for partition, offset in result.result_rows}
