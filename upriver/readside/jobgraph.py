"""Marquez's lineage graph over Upriver's runs: each job's current inputs and outputs as Marquez keeps them, the
job a dataset's graph starts from, and the walk through jobs (`GET /api/v1/lineage`, docs/marquez.md).

Marquez walks jobs, not datasets (api/src/main/java/marquez/db/LineageDao.java `getLineage`): from a start job,
each level adds every job whose *current* inputs or outputs share a dataset with a job of the level before, in
both directions (two readers of one table are neighbours too), for `depth` levels; the graph is the jobs reached
with their current inputs and outputs. A job's current io is what Marquez's `job_versions_io_mapping` marks
`is_current_job_version`: the inputs of its newest job version that has inputs, the outputs of its newest that has
outputs (a version with none leaves the old ones current). Marquez makes a version when a batch run ends
(COMPLETE, FAIL or ABORT: a failed run counts), on any event of a STREAMING job, and for a JobEvent; so here a run
"counts" when its status is one of those three, its job is streaming, or it is a JobEvent's design-time run, and
the order is the run's end time (its start while open; ties broken by a hash of the run id). (Marquez orders by
arrival; Upriver's runs are order-free, so event time stands in.) A dataset's graph starts at the job of the
newest version that wrote it, else that read it (`getJobFromInputOrOutput`); a version is a run's exact (inputs,
outputs) per job, created at the first counted run that had them.

A request costs the same few queries whatever the depth: one scan of `runs` answers every job's current inputs
and outputs (a row per job), one reads the jobs' newest runs by run id (the primary key), one finds a dataset's
start job, one the datasets' attributes; the walk then runs in memory over the job graph, which is small beside
the run history (a job runs many times), so no query per level is needed. `as_of` bounds every query: the graph
as Marquez would have drawn it then. Ids come back as stored; the caller's `Aliases` map them to canonical ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sinks.clickhouse import quote_identifier
from upriver.readside.aliases import Aliases
from upriver.readside.jobs import RUN_COLUMNS, RunRecord, run_record  # the run shape the Marquez job routes read
from upriver.readside.model import FAR_FUTURE_MS
from upriver.readside.queries import FRONTIER_CHUNK, SqlClient

# When a run makes a Marquez job version (see the module docstring); JSON is read only for runs still open.
_STREAMING = (
    "(positionCaseInsensitive(facets, 'STREAMING') > 0 AND 'STREAMING' IN ("
    "upper(JSONExtractString(facets, 'jobType', 'processingType')),"
    " upper(JSONExtractString(facets, 'jobFacets', 'jobType', 'processingType'))))"
)
_DESIGN_TIME = (
    "(position(facets, 'designTime') > 0 AND JSONExtractBool(facets, 'openlineage', 'designTime')"
    " AND JSONExtractString(facets, 'openlineage', 'eventType') != 'DATASET')"
)
COUNTED = (
    f"(status IN ('COMPLETE', 'FAIL', 'ABORT')"
    f" OR (status IN ('START', 'RUNNING', 'OTHER') AND ({_STREAMING} OR {_DESIGN_TIME})))"
)
# A DatasetEvent's per-dataset run (schemas/openlineage.py): Marquez makes no job of it.
_NOT_DATASET_EVENT = (
    "NOT (job_name = 'openlineage.dataset-event' AND JSONExtractString(facets, 'openlineage', 'eventType') = 'DATASET')"
)
_KEY = "toUnixTimestamp64Milli(coalesce(ended_at, started_at))"


@dataclass(frozen=True, slots=True)
class JobIO:
    """A job with its current inputs and outputs (canonical ids) as Marquez holds them; the id of its newest run
    (any status), or, for a job only declared by JobEvents, of that declaration."""

    job: str
    namespace: str
    name: str
    inputs: frozenset[str]
    outputs: frozenset[str]
    created_at: int
    updated_at: int
    latest_run: str | None
    declared_run: str | None


@dataclass(frozen=True, slots=True)
class DatasetRow:
    first_seen: int | None
    last_seen: int | None
    last_written: int | None
    fields: tuple[str, ...]


class JobGraphReader:
    """The SQL of Marquez's lineage over `<database>`'s runs and nodes."""

    def __init__(self, client: SqlClient, database: str, chunk: int = FRONTIER_CHUNK) -> None:
        self._client = client
        self._db = quote_identifier(database)
        self._chunk = chunk

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters).result_rows

    def _chunked(self, sql: str, ids: list[str], **parameters: Any) -> Iterable[Sequence[Any]]:
        for start in range(0, len(ids), self._chunk):
            yield from self._rows(sql, ids=ids[start : start + self._chunk], **parameters)

    def jobs(self, aliases: Aliases, as_of: int | None) -> dict[str, JobIO]:
        """Every job with a run started by `as_of` (None: now), with its current io (empty without a counted
        run): one scan of `runs` keeps each job's current inputs and outputs and its newest run's id."""
        t = FAR_FUTURE_MS if as_of is None else int(as_of)
        sql = (
            "SELECT job_id, any(job_namespace), any(job_name), toUnixTimestamp64Milli(min(started_at)), max(k),"
            " argMaxIf(input_ids, (k, h), c AND notEmpty(input_ids)),"
            " argMaxIf(output_ids, (k, h), c AND notEmpty(output_ids)),"
            " argMaxIf(run_id, (started_at, h), NOT d), argMaxIf(run_id, (started_at, h), d) FROM ("
            "  SELECT job_id, job_namespace, job_name, run_id, input_ids, output_ids, started_at,"
            "  cityHash64(run_id) AS h,"
            f"  {_KEY} AS k, {COUNTED} AND k <= {{t:Int64}} AS c, status = 'OTHER' AND {_DESIGN_TIME} AS d"
            f"  FROM {self._db}.runs FINAL WHERE job_id != '' AND toUnixTimestamp64Milli(started_at) <= {{t:Int64}}"
            f"  AND {_NOT_DATASET_EVENT}"
            ") GROUP BY job_id"
        )
        out: dict[str, JobIO] = {}
        for job, ns, name, created, updated, ins, outs, last, declared in self._rows(sql, t=t):
            out[str(job)] = JobIO(
                job=str(job), namespace=str(ns), name=str(name),
                inputs=frozenset(aliases.canonical(str(i)) for i in ins),
                outputs=frozenset(aliases.canonical(str(o)) for o in outs),
                created_at=int(created), updated_at=int(updated),
                latest_run=str(last) or None, declared_run=None if last else str(declared) or None,
            )  # fmt: skip
        return out

    def runs(self, run_ids: list[str]) -> dict[str, RunRecord]:
        """run id -> the run as the Marquez job and run shapes read it (upriver/readside/jobs.py)."""
        sql = (
            f"SELECT {RUN_COLUMNS}, status = 'OTHER' AND {_DESIGN_TIME} FROM {self._db}.runs FINAL"
            " WHERE run_id IN {ids:Array(String)}"
        )
        return {str(row[0]): run_record(row, bool(row[-1])) for row in self._chunked(sql, run_ids)}

    def start_job(self, names: list[str], as_of: int | None) -> str | None:
        """The job Marquez starts a dataset's graph from (`getJobFromInputOrOutput`): of the job versions whose
        io holds any of `names`, the newest that wrote it, else the newest that read it; None when none did.
        A version is grouped by a hash of its sorted inputs and outputs (grouping by the arrays is slower)."""
        t = FAR_FUTURE_MS if as_of is None else int(as_of)
        sql = (
            "SELECT job_id FROM ("
            " SELECT job_id, arrayExists(x -> x IN {n:Array(String)}, output_ids) AS wrote,"
            " min((k, run_id)) AS created FROM ("
            f"  SELECT job_id, job_name, run_id, input_ids, output_ids, status, facets, {_KEY} AS k"
            f"   FROM {self._db}.runs FINAL"
            "   WHERE (arrayExists(x -> x IN {n:Array(String)}, input_ids)"
            " OR arrayExists(x -> x IN {n:Array(String)}, output_ids))"
            f"   AND job_id != '') WHERE {COUNTED} AND k <= {{t:Int64}} AND {_NOT_DATASET_EVENT}"
            " GROUP BY job_id, wrote, cityHash64(arraySort(input_ids), arraySort(output_ids))"
            ") ORDER BY wrote DESC, created DESC, job_id LIMIT 1"
        )
        rows = self._rows(sql, n=names, t=t)
        return str(rows[0][0]) if rows else None

    def datasets(self, ids: list[str]) -> dict[str, DatasetRow]:
        """node id -> first seen, last seen, last written (epoch ms) and field names, for the `ids` seen."""
        sql = (
            "SELECT node_id, toUnixTimestamp64Milli(min(first_seen)), toUnixTimestamp64Milli(max(last_seen)),"
            f" toUnixTimestamp64Milli(max(last_written)), argMaxMerge(fields) FROM {self._db}.nodes"
            " WHERE node_id IN {ids:Array(String)} GROUP BY node_id"
        )
        return {
            str(node): DatasetRow(int(first) or None, int(last) or None, int(written) or None, tuple(fields))
            for node, first, last, written, fields in self._chunked(sql, ids)
        }

    def named(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """(node id, namespace, name) of every node that is not a job with one of these (namespace, name)."""
        sql = (
            "SELECT node_id, any(namespace) AS ns, any(name) AS n FROM ("
            f" SELECT node_id, namespace, name FROM {self._db}.nodes"
            "  WHERE (namespace, name) IN {p:Array(Tuple(String, String))}"
            ") GROUP BY node_id HAVING NOT startsWith(node_id, 'job:') ORDER BY node_id"
        )
        return [(str(i), str(ns), str(n)) for i, ns, n in self._rows(sql, p=pairs)]


def walk(jobs: Mapping[str, JobIO], start: str, depth: int) -> list[str]:
    """The jobs `getLineage` reaches from `start` in `depth` levels, in walk order: level n+1 is every job whose
    current io shares a dataset with a job of level n. A start job without current io is answered alone."""
    by_dataset: dict[str, list[str]] = defaultdict(list)
    for job in sorted(jobs):
        for dataset in jobs[job].inputs | jobs[job].outputs:
            by_dataset[dataset].append(job)
    reached, level = [start], [start]
    seen_jobs, seen_datasets = {start}, set[str]()
    for _ in range(depth):
        touched = {d for job in level for d in jobs[job].inputs | jobs[job].outputs} - seen_datasets
        seen_datasets |= touched
        level = []
        for dataset in sorted(touched):
            for other in by_dataset[dataset]:
                if other not in seen_jobs:
                    seen_jobs.add(other)
                    level.append(other)
        if not level:
            break
        reached.extend(level)
    return reached
