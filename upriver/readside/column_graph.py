"""Marquez's column lineage over Upriver's column edges (`GET /api/v1/column-lineage?nodeId=`; the answer's shape is
upriver/http/marquez/columns.py's).

Marquez keeps a row per (output field, input field) and version of each (api/.../db/OpenLineageDao.java
`upsertColumnLineage`, written for every event with outputs, whatever the run's state), and walks the newest row of
each (output field, input field) pair created by a time (db/ColumnLineageDao.java `getLineage`,
`column_lineage_latest`). Here a pair is a (source column, destination column) of the `edges` table's COLUMN_ rows
under the columns' canonical ids (every alias of a dataset is one dataset), its rows are the runs that wrote it
(any status: Marquez keeps failed runs' rows too), "created" is the run's start (`valid_from`, the time its dataset
version was created) and "newest" is the latest event time, then the run id. Dataset-level entries (`<id>#`) are
not fields: Marquez has none.

The walk (`walk`) is Marquez's recursive query on rows, not on fields: level 0 is every row whose output field is a
start field; from a row (input i -> output o) the next level holds the rows whose output is i (upstream) and, with
`withDownstream`, the rows whose input is o; rows are kept up to level depth - 1 (`node.depth < :depth - 1`), so a
depth below 2 keeps level 0 alone. A start field that is no row's output (a source column) reaches nothing, even
downstream, as in Marquez. Each level costs one query for the datasets it reaches first (the edges' primary key for
the sources, the dst projection for the destinations); a dataset's rows are read once per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas import identity
from sinks.clickhouse import quote_identifier
from upriver.readside.aliases import Aliases
from upriver.readside.model import FAR_FUTURE_MS
from upriver.readside.queries import SqlClient

CHUNK = 200  # datasets per query (two ranges each)
Pair = tuple[str, str]  # (source column id, destination column id), canonical


@dataclass(frozen=True, slots=True)
class ColumnRow:
    """The newest run's row of a (source column, destination column) pair: the run, the producer version it wrote
    the destination dataset at ('' when none), its start and its last event time (epoch ms)."""

    src: str
    dst: str
    run_id: str
    dst_version: str
    started_at: int
    seen_at: int


def _newer(a: ColumnRow, b: ColumnRow | None) -> bool:
    return b is None or (a.seen_at, a.run_id) > (b.seen_at, b.run_id)


@dataclass
class ColumnIndex:
    """The pairs read so far, by destination and by source column; `until` bounds the runs' starts."""

    reader: ColumnGraphReader
    aliases: Aliases
    until: int = FAR_FUTURE_MS
    pairs: dict[Pair, ColumnRow] = field(default_factory=dict)
    into: dict[str, set[Pair]] = field(default_factory=dict)
    out_of: dict[str, set[Pair]] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)

    def load(self, datasets: Iterable[str]) -> None:
        """Reads the pairs into or out of the columns of `datasets` (canonical node ids) not read yet."""
        wanted = sorted(set(datasets) - self.read)
        self.read.update(wanted)
        if wanted:
            self._keep(self.reader.rows(self.aliases.expand(wanted)))

    def load_all(self) -> None:
        self._keep(self.reader.rows(None))

    def _keep(self, rows: Iterable[ColumnRow]) -> None:
        for raw in rows:
            if raw.started_at > self.until:
                continue
            row = ColumnRow(self.aliases.canonical(raw.src), self.aliases.canonical(raw.dst), raw.run_id,
                            raw.dst_version, raw.started_at, raw.seen_at)  # fmt: skip
            pair = (row.src, row.dst)
            if _newer(row, self.pairs.get(pair)):
                self.pairs[pair] = row
            self.into.setdefault(row.dst, set()).add(pair)
            self.out_of.setdefault(row.src, set()).add(pair)

    def fields_of(self, node: str) -> set[str]:
        """The field names of `node` (canonical) that a pair read so far names."""
        cols = [c for c in (*self.into, *self.out_of) if identity.node_of(c) == node]
        return {f for c in cols if (f := identity.field_of(c))}


def walk(index: ColumnIndex, start: Iterable[str], depth: int, downstream: bool) -> list[ColumnRow]:
    """The rows Marquez's `getLineage` reaches from the `start` columns (canonical column ids)."""
    first = set(start)
    index.load(identity.node_of(c) for c in first)
    level = {p for c in first for p in index.into.get(c, ())}
    seen = set(level)
    for _ in range(depth - 1):
        ups, downs = {p[0] for p in level}, {p[1] for p in level} if downstream else set()
        index.load(identity.node_of(c) for c in ups | downs)
        step = {p for c in ups for p in index.into.get(c, ())} | {p for c in downs for p in index.out_of.get(c, ())}
        level = step - seen
        if not level:
            break
        seen |= level
    return [index.pairs[p] for p in sorted(seen)]


class ColumnGraphReader:
    """The column edges' rows per (source, destination, run) over `<database>`'s edges."""

    def __init__(self, client: SqlClient, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    def rows(self, names: list[str] | None) -> list[ColumnRow]:
        """Per (src, dst, run) of the field-level column edges into or out of a column of `names` (node ids as
        stored; None: every one): the producer version written, the run's start and its last event time."""
        if names is None:
            return self._read("1", {})
        out: list[ColumnRow] = []
        for at in range(0, len(names), CHUNK):
            chunk = names[at : at + CHUNK]
            bound = {f"lo{i}": f"{n}#" for i, n in enumerate(chunk)} | {f"hi{i}": f"{n}$" for i, n in enumerate(chunk)}

            def ranges(col: str, size: int = len(chunk)) -> str:
                return " OR ".join(f"({col} > {{lo{i}:String}} AND {col} < {{hi{i}:String}})" for i in range(size))

            keys = (
                f"(src, dst, edge_type, run_id) IN (SELECT src, dst, edge_type, run_id FROM {self._db}.edges"
                f" WHERE {ranges('dst')} UNION ALL SELECT src, dst, edge_type, run_id FROM {self._db}.edges"
                f" WHERE {ranges('src')})"
            )
            out.extend(self._read(keys, bound))
        return out

    def _read(self, where: str, bound: dict[str, Any]) -> list[ColumnRow]:
        sql = (
            "SELECT src, dst, run_id, argMax(dst_version, revision),"
            " toUnixTimestamp64Milli(argMax(valid_from, revision)), toUnixTimestamp64Milli(max(event_time))"
            f" FROM {self._db}.edges"
            f" WHERE {where} AND startsWith(edge_type, 'COLUMN_') GROUP BY src, dst, run_id"
        )
        return [
            ColumnRow(str(src), str(dst), str(run), str(version or ""), int(started), int(seen))
            for src, dst, run, version, started, seen in self._rows(sql, **bound)
            if identity.field_of(str(src)) and identity.field_of(str(dst))
        ]
