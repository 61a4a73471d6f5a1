"""The lineage read side's ClickHouse queries: the walk's port (upriver/readside/walk.py) and the lookups.

The one lineage module that talks to ClickHouse, through the client it is given (anything with
clickhouse-connect's `query(sql, parameters=)`, typed by `SqlClient`; the same SQL on chDB and a server).
It never writes. Edge validity at an as-of time is decided here (docs/lineage-model.md, "Time travel"): per
edge row the highest revision decides; FAIL/ABORT runs never count; within (dst, job) only the newest valid
run's rows count unless written in APPEND mode. A large level is judged in SQL (`_valid_sql`), a small one
read as stored and judged by the same rules in Python (`valid_rows`). Retirements and aliases are applied
by the walk. Large id lists are split into chunks of `chunk` ids, so each query stays small.
Lookups answer rows as stored (ids not mapped to their canonical node); the facade shapes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, cast

from schemas import identity
from sinks.clickhouse import quote_identifier
from upriver.readside.aliases import Aliases
from upriver.readside.model import FAR_FUTURE_MS, Direction, EdgeRow

# Ids bound per query: large frontiers are split so each query stays small.
FRONTIER_CHUNK = 5_000
# A small walk level (up to RAW_LEVEL_IDS ids and RAW_LEVEL_ROWS stored rows) is read as stored and judged
# in Python (`valid_rows`); a larger one is judged by ClickHouse (`_valid_sql`). Planning the judging query
# costs ~5 ms of the ~6 ms a small level takes, reading the rows plainly ~3 ms; on a large level the
# planning is lost in the work and ClickHouse returns fewer rows (docs/performance.md, "A walk level").
RAW_LEVEL_IDS = 500
RAW_LEVEL_ROWS = 2_000
# A downstream level whose rows from the frontier alone pass this is judged by ClickHouse straight away: its
# dsts' rows (every run of every job reading a hub) are many, and read plainly they cost more than judged.
RAW_OUT_ROWS = 400


class QueryResult(Protocol):
    @property
    def result_rows(self) -> Sequence[Sequence[Any]]: ...


class SqlClient(Protocol):
    """The part of a clickhouse-connect client the read side uses."""

    def query(self, query: str, parameters: dict[str, Any] | None = None) -> QueryResult: ...


def _bound(as_of: int | None) -> int:
    return FAR_FUTURE_MS if as_of is None else int(as_of)


def valid_rows(rows: Iterable[Sequence[Any]], as_of: int | None) -> list[EdgeRow]:
    """The edges among stored rows (src, dst, edge_type, run_id, job, valid_from in epoch ms, run_status,
    revision, append: every row into their dsts) valid at `as_of`, by the rules
    `_valid_sql` states in SQL: per (src, dst, edge_type, run_id) the highest revision decides; FAIL and
    ABORT runs never count; valid_from <= as_of; within (dst, job) only the newest (valid_from, run_id)
    run's rows count, unless written in APPEND mode. Retirements and aliases are the walk's."""
    bound = _bound(as_of)
    last: dict[tuple[Any, Any, Any, Any], Sequence[Any]] = {}
    for row in rows:
        key = (row[0], row[1], row[2], row[3])
        held = last.get(key)
        if held is None or row[7] > held[7]:
            last[key] = row
    kept: list[Sequence[Any]] = []
    newest: dict[tuple[Any, Any], tuple[int, str]] = {}
    for row in last.values():
        if row[6] in ("FAIL", "ABORT") or row[5] > bound:
            continue
        kept.append(row)
        if not row[8]:
            group, run = (row[1], row[4]), (row[5], row[3])
            if group not in newest or run > newest[group]:
                newest[group] = run
    return [
        (str(r[0]), str(r[1]), str(r[2]), int(r[5]), str(r[4]))
        for r in kept
        if r[8] or newest[(r[1], r[4])] == (r[5], r[3])
    ]


class ClickHouseLineage:
    """`<database>`'s edges, runs, nodes, aliases and retirements; implements walk.LineagePort."""

    def __init__(
        self, client: SqlClient, database: str, chunk: int = FRONTIER_CHUNK, raw_rows: int = RAW_LEVEL_ROWS
    ) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        if raw_rows < 0:
            raise ValueError(f"raw_rows must be >= 0, got {raw_rows}")
        self._client = client
        self._db = quote_identifier(database)
        self._table = f"{self._db}.edges"
        self._chunk = chunk
        self._raw_rows = raw_rows

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    def _chunks(self, ids: list[str]) -> Iterable[list[str]]:
        for start in range(0, len(ids), self._chunk):
            yield ids[start : start + self._chunk]

    # ---- the walk's port ----------------------------------------------------------------------

    def aliases(self) -> Aliases:
        """Every alias pair (small: one per name beside a symlink), read once per query."""
        sql = f"SELECT alias_id, node_id FROM {self._db}.aliases"  # repeats are grouped here: cheaper to plan
        return Aliases(sorted({(str(a), str(n)) for a, n in self._rows(sql)}))

    def walk_context(self) -> tuple[Aliases, dict[str, list[int]]]:
        """Every alias pair and every retirement (rare, so all of them are read once per walk) in one query:
        each query costs ~1 ms however small its table (docs/performance.md, "A one-hop query"). Rows are
        (alias_id, node_id, false, 0) and (node_id, '', true, a RETIRE time in epoch ms)."""
        # Plain rows, grouped here: a GROUP BY on either side costs ~0.5 ms more to plan than it saves.
        sql = (
            f"SELECT alias_id, node_id, false, toInt64(0) FROM {self._db}.aliases UNION ALL"
            f" SELECT node_id, '', true, toUnixTimestamp64Milli(retired_at) FROM {self._db}.retirements"
        )
        pairs: set[tuple[str, str]] = set()
        times: dict[str, set[int]] = {}
        for first, second, is_retirement, at in self._rows(sql):
            if is_retirement:
                times.setdefault(str(first), set()).add(int(at))
            else:
                pairs.add((str(first), str(second)))
        return Aliases(sorted(pairs)), {node: sorted(ts) for node, ts in times.items()}

    def _valid_sql(self, where: str, as_of: int | None) -> str:
        """Rows of `edges` matching `where`, reduced to the edges valid at `as_of` before retirements:
        highest revision per row, no FAIL/ABORT, valid_from <= as_of, newest non-append run per (dst, job)."""
        return (
            "SELECT src, dst, edge_type, vf, job FROM ("
            " SELECT src, dst, edge_type, run_id, job, vf, ap,"
            "  max((vf, run_id)) OVER (PARTITION BY dst, job, ap) AS newest"
            " FROM ("
            "  SELECT src, dst, edge_type, run_id, any(job) AS job,"
            "   toUnixTimestamp64Milli(argMax(valid_from, revision)) AS vf,"
            "   argMax(run_status, revision) AS st, argMax(append, revision) AS ap"
            f"  FROM {self._table} WHERE {where}"
            "  GROUP BY src, dst, edge_type, run_id"
            f"  HAVING st NOT IN ('FAIL', 'ABORT') AND vf <= {_bound(as_of)}"
            " )"
            ") WHERE ap OR (vf, run_id) = newest"
        )

    def edges_into(self, ids: list[str], as_of: int | None) -> Iterator[EdgeRow]:
        return self._edges_into(ids, as_of, try_raw=True)

    def _edges_into(self, ids: list[str], as_of: int | None, try_raw: bool) -> Iterator[EdgeRow]:
        # A small level's rows are read as stored (up to `raw_rows` of them) and judged here: cheaper than
        # having ClickHouse plan the judging query. A larger level is judged by ClickHouse (fewer rows back).
        where = "dst IN {frontier:Array(String)}"
        raw = (
            "SELECT src, dst, edge_type, run_id, job, toUnixTimestamp64Milli(valid_from), run_status, revision,"
            f" append FROM {self._table} WHERE {where} LIMIT {self._raw_rows + 1}"
        )
        for chunk in self._chunks(ids):
            small = try_raw and self._raw_rows and len(chunk) <= RAW_LEVEL_IDS
            rows = self._rows(raw, frontier=chunk) if small else ()
            if small and len(rows) <= self._raw_rows:
                yield from valid_rows(rows, as_of)
            else:
                yield from cast("Sequence[EdgeRow]", self._rows(self._valid_sql(where, as_of), frontier=chunk))

    def edges_out_of(self, ids: list[str], as_of: int | None) -> Iterator[EdgeRow]:
        # Supersession is decided among all rows into a dst, so first find the candidate dsts, then
        # judge them with every row that leads into them, and keep the ones from `ids`. With many rows from
        # `ids` alone (a hub's readers, run after run) no plain read of the dsts' rows is tried.
        candidates: list[str] = []
        rows_out = 0
        sql = f"SELECT dst, count() FROM {self._table} WHERE src IN {{frontier:Array(String)}} GROUP BY dst"
        for chunk in self._chunks(ids):
            for dst, n in self._rows(sql, frontier=chunk):
                candidates.append(str(dst))
                rows_out += int(n)
        if not candidates:
            return
        sources = set(ids)
        for row in self._edges_into(candidates, as_of, try_raw=rows_out <= min(self._raw_rows, RAW_OUT_ROWS)):
            if row[0] in sources:
                yield row

    def first_dsts(self, ids: list[str], limit: int, after: str | None = None) -> list[str]:
        above = "" if after is None else " AND dst > {after:String}"
        sql = (
            f"SELECT dst FROM {self._table} WHERE src IN {{frontier:Array(String)}}{above}"
            f" GROUP BY dst ORDER BY dst LIMIT {int(limit)}"
        )
        found: set[str] = set()
        for chunk in self._chunks(ids):
            found.update(
                str(r[0]) for r in self._rows(sql, frontier=chunk, **({} if after is None else {"after": after}))
            )
        return sorted(found)[:limit]

    def job_artifacts(self, job: str, direction: Direction, as_of: int | None) -> Iterator[str]:
        side = "input_ids" if direction == "upstream" else "output_ids"
        sql = (
            f"SELECT DISTINCT arrayJoin({side}) FROM {self._db}.runs FINAL WHERE job_id = {{j:String}}"
            f" AND status NOT IN ('FAIL', 'ABORT') AND toUnixTimestamp64Milli(started_at) <= {_bound(as_of)}"
        )
        for (raw,) in self._rows(sql, j=job):
            yield str(raw)

    def any_edges(self, ids: list[str], direction: Direction) -> bool:
        key = "dst" if direction == "upstream" else "src"
        sql = f"SELECT 1 FROM {self._table} WHERE {key} IN {{frontier:Array(String)}} LIMIT 1"
        return any(self._rows(sql, frontier=c) for c in self._chunks(ids))

    def node_exists(self, node_id: str, aliases: Aliases) -> bool:
        names = aliases.names(identity.node_of(node_id))
        if identity.kind_of(node_id) == "job":
            sql = f"SELECT count() FROM {self._db}.runs WHERE job_id IN {{n:Array(String)}}"
        else:
            sql = f"SELECT count() FROM {self._db}.nodes WHERE node_id IN {{n:Array(String)}}"
        if self._rows(sql, n=list(names))[0][0]:
            return True
        # or named only as a column source (dbt seeds inside columnLineage): its columns have edges
        sql = (
            f"SELECT 1 FROM {self._table} WHERE src IN {{n:Array(String)}} OR dst IN {{n:Array(String)}}"
            " OR arrayExists(p -> startsWith(src, p), {p:Array(String)}) LIMIT 1"
        )
        expanded = list(aliases.names(node_id))
        prefixes = [f"{n}#" for n in expanded if "#" not in n]
        return bool(self._rows(sql, n=expanded, p=prefixes))

    def jobs_touching(self, ids: list[str], aliases: Aliases) -> dict[str, dict[str, Any]]:
        names = aliases.expand(ids)
        out: dict[str, dict[str, Any]] = {}
        sql = (
            "SELECT job_id, any(job_namespace), any(job_name), groupUniqArrayArray(input_ids),"
            " groupUniqArrayArray(output_ids), argMax(status, started_at)"
            f" FROM {self._db}.runs FINAL WHERE job_id != ''"
            " AND (arrayExists(x -> x IN {n:Array(String)}, input_ids)"
            " OR arrayExists(x -> x IN {n:Array(String)}, output_ids))"
            " AND JSONExtractBool(facets, 'openlineage', 'designTime') = 0 GROUP BY job_id"
        )
        for chunk in self._chunks(names):
            for job, ns, name, ins, outs, status in self._rows(sql, n=chunk):
                entry = out.setdefault(str(job), {"namespace": ns, "name": name, "inputs": set(), "outputs": set(),
                                                  "status": status})  # fmt: skip
                entry["inputs"].update(aliases.canonical(str(i)) for i in ins)
                entry["outputs"].update(aliases.canonical(str(o)) for o in outs)
        return out

    # ---- lookups ------------------------------------------------------------------------------

    def nodes_named(self, text: str) -> list[str]:
        """Ids (as stored, up to 50) whose name, namespace/name or namespace:name is exactly `text`."""
        sql = (
            "SELECT node_id FROM ("
            f" SELECT node_id, any(namespace) AS ns, any(name) AS n FROM {self._db}.nodes GROUP BY node_id"
            ") WHERE n = {t:String} OR concat(ns, '/', n) = {t:String} OR concat(ns, ':', n) = {t:String}"
            " LIMIT 50"
        )
        return [str(r[0]) for r in self._rows(sql, t=text)]

    def search_ids(self, text: str, limit: int) -> list[str]:
        """Node and job ids (as stored, up to `limit`) whose id, namespace, name (or job's) contains `text`
        (case-insensitive), exact names first."""
        sql = (
            "SELECT id, n FROM ("
            f" SELECT node_id AS id, name AS n FROM {self._db}.nodes"
            "  WHERE positionCaseInsensitive(node_id, {t:String}) > 0 OR positionCaseInsensitive(name, {t:String}) > 0"
            "   OR positionCaseInsensitive(namespace, {t:String}) > 0 GROUP BY node_id, name"
            " UNION ALL"
            f" SELECT job_id AS id, any(job_name) AS n FROM {self._db}.runs"
            "  WHERE job_id != '' AND (positionCaseInsensitive(job_name, {t:String}) > 0"
            "   OR positionCaseInsensitive(job_namespace, {t:String}) > 0) GROUP BY job_id"
            ") ORDER BY n != {t:String}, id != {t:String}, NOT endsWith(n, {t:String}), length(id), id"
            " LIMIT {limit:UInt32}"
        )
        return [str(node) for node, _ in self._rows(sql, t=text, limit=limit)]

    def node_row(self, names: list[str]) -> Sequence[Any] | None:
        """(count, kind, first_seen, last_seen, last_written, retired_at, latest_version, owner, tags,
        fields, producing_job, producing_run) over every name of a node; None when no row names it."""
        sql = (
            "SELECT count(), any(kind), min(first_seen), max(last_seen), max(last_written), max(retired_at),"
            " argMaxMerge(latest_version), argMaxMerge(owner), argMaxMerge(tags), argMaxMerge(fields),"
            " argMaxMerge(producing_job), argMaxMerge(producing_run)"
            f" FROM {self._db}.nodes WHERE node_id IN {{n:Array(String)}}"
        )
        rows = self._rows(sql, n=names)
        return rows[0] if rows and rows[0][0] else None

    def facet_texts(self, names: list[str], limit: int = 200) -> Iterator[str]:
        """The facet documents (JSON texts) of the node's newest `limit` runs that name it, oldest first."""
        sql = (
            "SELECT arrayFilter((f, i) -> i IN {n:Array(String)}, arrayConcat(input_facets, output_facets),"
            " arrayConcat(input_ids, output_ids)) FROM ("
            f" SELECT * FROM {self._db}.runs FINAL"
            "  WHERE arrayExists(x -> x IN {n:Array(String)}, input_ids)"
            " OR arrayExists(x -> x IN {n:Array(String)}, output_ids)"
            "  ORDER BY coalesce(ended_at, started_at) DESC, run_id DESC LIMIT {limit:UInt32}"
            ") ORDER BY coalesce(ended_at, started_at), run_id"
        )
        for (facet_texts,) in self._rows(sql, n=names, limit=limit):
            yield from facet_texts

    def column_edges(self, prefixes: list[str], as_of: int | None) -> Sequence[Sequence[Any]]:
        """(src, dst, edge_type, subtype) of the column edges valid at `as_of` from or into a column whose id
        starts with one of `prefixes`, distinct, ordered."""
        where = (
            "(arrayExists(p -> startsWith(src, p), {p:Array(String)})"
            " OR arrayExists(p -> startsWith(dst, p), {p:Array(String)}))"
        )
        sql = (
            "SELECT src, dst, edge_type, sub FROM ("
            "  SELECT src, dst, edge_type, run_id, any(job) AS job, argMax(subtype, revision) AS sub,"
            "   toUnixTimestamp64Milli(argMax(valid_from, revision)) AS vf, argMax(run_status, revision) AS st"
            f"  FROM {self._table} WHERE {where} AND startsWith(edge_type, 'COLUMN_')"
            f"  GROUP BY src, dst, edge_type, run_id HAVING st NOT IN ('FAIL', 'ABORT') AND vf <= {_bound(as_of)}"
            ") GROUP BY src, dst, edge_type, sub ORDER BY src, dst, edge_type"
        )
        return self._rows(sql, p=prefixes)

    def job_row(self, job_id: str) -> Sequence[Any]:
        """(runs, namespace, name, inputs, outputs, latest run id, its status, error, start) of a job."""
        sql = (
            "SELECT count(), any(job_namespace), any(job_name), groupUniqArrayArray(input_ids),"
            " groupUniqArrayArray(output_ids), argMax(run_id, started_at), argMax(status, started_at),"
            " argMax(error, started_at), max(started_at)"
            f" FROM {self._db}.runs FINAL WHERE job_id = {{j:String}}"
        )
        return self._rows(sql, j=job_id)[0]

    def run_row(self, run_id: str) -> Sequence[Any] | None:
        """(job, namespace, name, kind, status, started, ended, error, parent, input ids, input versions,
        output ids, output versions, facets) of one run's merged state; None when there is no such run."""
        sql = (
            "SELECT job_id, job_namespace, job_name, job_kind, status, toUnixTimestamp64Milli(started_at),"
            " toUnixTimestamp64Milli(ended_at), error, parent_run_id, input_ids, input_versions, output_ids,"
            f" output_versions, facets FROM {self._db}.runs FINAL WHERE run_id = {{r:String}}"
        )
        rows = self._rows(sql, r=run_id)
        return rows[0] if rows else None

    def version_rows(self, names: list[str]) -> Sequence[Sequence[Any]]:
        """(version, run, job, status, error, start) of every run that wrote any of `names`, oldest first."""
        sql = (
            "SELECT output_versions[arrayFirstIndex(x -> x IN {n:Array(String)}, output_ids)] AS v, run_id,"
            " job_id, status, error, toUnixTimestamp64Milli(started_at)"
            f" FROM {self._db}.runs FINAL WHERE arrayExists(x -> x IN {{n:Array(String)}}, output_ids)"
            f" ORDER BY started_at, run_id"
        )
        return self._rows(sql, n=names)

    def producing_run(self, names: list[str], version: str | None, as_of: int | None) -> Sequence[Any] | None:
        """(run, job, kind, status, started, ended, parent, input ids, input versions, output ids, output
        versions, the version written) of the newest valid run started by `as_of` that wrote any of
        `names` (at `version`, when given); None when there is none."""
        at = "arrayFirstIndex(x -> x IN {n:Array(String)}, output_ids)"
        version_filter = f" AND output_versions[{at}] = {{v:String}}" if version else ""
        sql = (
            "SELECT run_id, job_id, job_kind, status,"
            " toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at), parent_run_id,"
            f" input_ids, input_versions, output_ids, output_versions, output_versions[{at}]"
            f" FROM {self._db}.runs FINAL WHERE arrayExists(x -> x IN {{n:Array(String)}}, output_ids){version_filter}"
            f" AND status NOT IN ('FAIL', 'ABORT') AND toUnixTimestamp64Milli(started_at) <= {_bound(as_of)}"
            " ORDER BY started_at DESC, run_id DESC LIMIT 1"
        )
        rows = self._rows(sql, n=names, v=version or "")
        return rows[0] if rows else None
