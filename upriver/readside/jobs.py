"""Namespaces, jobs and runs as Marquez lists them, read from the `runs` table (docs/marquez.md).

A Marquez namespace is every job namespace and artifact namespace Upriver has seen (an artifact's other
names, its aliases, count too); a job is a (job namespace, job name) with at least one run that is not a
DatasetEvent's; its runs are the `runs` table's rows, the highest revision per run id (FINAL). A JobEvent
(design time, no run) makes a job without runs: its declared inputs and outputs stand in for a run's.
Upriver-native artifact kinds (model:, feature: ...) are Marquez datasets; only job vertices are jobs.

Every list page is three queries at most, whatever its size: one picks the page (with the total count in a
window), one reads the newest runs of every job on it, one their raw events. The values answered are rows as
stored, but for a run's facets: Marquez merges them over all the run's events, so they are read from its raw
events (upriver/readside/run_facets.py, `RunRecord.merged`); the stored ones (its status-deciding event's)
stand in where it has none. The JSON shapes are upriver/http/marquez/shapes.py's. Never writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from schemas import identity
from sinks.clickhouse import quote_identifier
from upriver.readside.queries import SqlClient
from upriver.readside.run_facets import MergedFacets, RunFacetsReader

LATEST_RUNS = 10  # the runs a job answers with (Marquez's latestRuns)
TERMINAL = ("COMPLETE", "FAIL", "ABORT", "DRIFT", "QUALITY", "DEPLOY", "RETIRE")
# Marquez run state -> the Upriver statuses it stands for (OpenLineage OTHER events leave a run RUNNING)
STATUSES_OF = {
    "NEW": (),
    "RUNNING": ("START", "RUNNING", "OTHER"),
    "COMPLETED": ("COMPLETE", "DRIFT", "QUALITY", "DEPLOY", "RETIRE"),
    "ABORTED": ("ABORT",),
    "FAILED": ("FAIL",),
    "OTHER": (),
}
# design time (schemas/openlineage.py): a JobEvent's or DatasetEvent's "run", whose status is always OTHER (the
# status test comes first, so facets are parsed only for those: short-circuit evaluation)
_DESIGN = "(status = 'OTHER' AND JSONExtractBool(facets, 'openlineage', 'designTime'))"
# 0: a run; 1: a JobEvent's declared lineage; 2: a DatasetEvent's (no job at all)
_KIND = f"multiIf(NOT {_DESIGN}, 0, JSONExtractString(facets, 'openlineage', 'eventType') = 'DATASET', 2, 1)"
_UPDATED = "coalesce(ended_at, started_at)"
# the columns `run_record` reads, RUN_WIDTH of them (other readers select theirs after these)
RUN_COLUMNS = (
    "run_id, job_id, job_namespace, job_name, status, revision, toUnixTimestamp64Milli(started_at),"
    " toUnixTimestamp64Milli(ended_at), parent_run_id, facets, input_namespaces, input_names, input_versions,"
    " input_facets, output_namespaces, output_names, output_versions, output_facets, input_ids, output_ids"
)
RUN_WIDTH = 20


@dataclass(frozen=True, slots=True)
class Artifact:
    """An input or output of a run: namespace and name as stored (the event's canonical name; a Marquez
    answer names its dataset instead: upriver/readside/run_datasets.py), the producer's version ('' when
    none), its facets as stored (a JSON object text, '' when none), its node id, and for an input once
    resolved, the dataset version it read as the versions list names it: (producer version, writing run id,
    '' for a first read's version); None when not resolved."""

    namespace: str
    name: str
    version: str
    facets: str
    node_id: str = ""
    read: tuple[str, str] | None = None
    # once resolved (upriver/readside/dataset_versions.py): every (namespace, name) its Marquez dataset answers under
    names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run's merged state (times in epoch ms; `design`: a JobEvent's declared lineage, not a run;
    `facets`: its status-deciding event's as stored; `merged`: its facets merged over its raw events as
    Marquez merges them, None when it has none or they were not looked up)."""

    run_id: str
    job_id: str
    namespace: str
    job_name: str
    status: str
    revision: int
    started_at: int
    ended_at: int | None
    parent_run_id: str | None
    facets: str
    inputs: tuple[Artifact, ...]
    outputs: tuple[Artifact, ...]
    design: bool = False
    merged: MergedFacets | None = None

    @property
    def updated_at(self) -> int:
        return self.started_at if self.ended_at is None else self.ended_at

    @property
    def start_seen(self) -> bool:
        """Whether an event before the terminal one was seen (Marquez leaves startedAt null otherwise)."""
        return not (self.revision <= 1 and self.status in TERMINAL)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job: created (its first event) and updated (its newest run's last time), its newest runs (newest
    first, at most LATEST_RUNS, never design time), when it has none its newest JobEvent's declared
    lineage, and its tags when they were looked up (upriver/readside/tags.py; None: not looked up, the
    current run's OpenLineage `tags` job facet stands in, upriver/http/marquez/shapes.py)."""

    namespace: str
    name: str
    created_at: int
    updated_at: int
    runs: tuple[RunRecord, ...] = ()
    declared: RunRecord | None = None
    tags: tuple[str, ...] | None = None

    @property
    def current(self) -> RunRecord | None:
        """The run whose inputs, outputs and job facets the job shows: its newest, else its declaration."""
        return self.runs[0] if self.runs else self.declared


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    name: str
    created_at: int


def _artifacts(namespaces: Sequence[str], names: Sequence[str], versions: Sequence[str], facets: Sequence[str],
               ids: Sequence[str]) -> tuple[Artifact, ...]:  # fmt: skip
    return tuple(Artifact(str(a), str(b), str(c), str(d), str(e))
                 for a, b, c, d, e in zip(namespaces, names, versions, facets, ids, strict=True))  # fmt: skip


def run_record(row: Sequence[Any], design: bool = False) -> RunRecord:
    """The run of a row whose first RUN_WIDTH columns are RUN_COLUMNS."""
    return RunRecord(
        run_id=str(row[0]),
        job_id=str(row[1]),
        namespace=str(row[2]),
        job_name=str(row[3]),
        status=str(row[4]),
        revision=int(row[5]),
        started_at=int(row[6]),
        ended_at=None if row[7] is None else int(row[7]),
        parent_run_id=None if row[8] is None else str(row[8]),
        facets=str(row[9] or "{}"),
        inputs=_artifacts(row[10], row[11], row[12], row[13], row[18]),
        outputs=_artifacts(row[14], row[15], row[16], row[17], row[19]),
        design=design,
    )


class JobsReader:
    """Marquez's namespaces, jobs and runs over `<database>`'s runs (and aliases)."""

    def __init__(self, client: SqlClient, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)
        self._facets = RunFacetsReader(client, database)

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    def with_event_facets(self, runs: Sequence[RunRecord]) -> list[RunRecord]:
        """The runs, each with its facets merged over its raw events (`merged`) when it has any: one query for
        them all (JobEvent declarations have no run, so no raw RunEvents, and are not looked up)."""
        found = self._facets.merged([r.run_id for r in runs if not r.design])
        return [replace(r, merged=found[r.run_id]) if r.run_id in found else r for r in runs]

    # ---- namespaces ---------------------------------------------------------------------------

    def namespaces(self) -> list[NamespaceRecord]:
        """Every namespace, by name (byte order), created at the first event that named it."""
        sql = (
            "SELECT 0, ns, min(t) FROM ("
            " SELECT arrayJoin(arrayConcat([job_namespace], input_namespaces, output_namespaces)) AS ns,"
            f"  toUnixTimestamp64Milli(started_at) AS t FROM {self._db}.runs"
            ") GROUP BY ns"
            " UNION ALL "
            "SELECT 1, alias, min(t) FROM ("
            f" SELECT arrayJoin(alias_ids) AS alias, toUnixTimestamp64Milli(started_at) AS t FROM {self._db}.runs"
            "  WHERE notEmpty(alias_ids)"
            ") GROUP BY alias"
        )
        first: dict[str, int] = {}
        for is_alias, value, t in self._rows(sql):
            name = str(value)
            if is_alias:
                try:
                    name = identity.parse(name).namespace
                except identity.IdentityError:
                    continue
            first[name] = min(int(t), first.get(name, int(t)))
        return [NamespaceRecord(n, first[n]) for n in sorted(first)]

    def namespace(self, name: str) -> NamespaceRecord | None:
        return next((n for n in self.namespaces() if n.name == name), None)

    # ---- jobs ---------------------------------------------------------------------------------

    def _job_page_sql(self, where: str, filtered: bool) -> str:
        """Jobs matching `where` (over `runs`), newest updated first, with the count of all of them (before
        the state filter: Marquez counts every job of the namespace) in a window."""
        return (
            "SELECT job_id, ns, name, created, updated, total FROM ("
            " SELECT job_id, any(job_namespace) AS ns, any(job_name) AS name, min(t0) AS created, max(t1) AS updated,"
            "  argMaxIf(status, (t1, t0, run_id), kind = 0) AS last_status, countIf(kind = 0) AS runs,"
            "  count() OVER () AS total"
            " FROM ("
            "  SELECT run_id, job_id, job_namespace, job_name, status, toUnixTimestamp64Milli(started_at) AS t0,"
            f"   toUnixTimestamp64Milli({_UPDATED}) AS t1, {_KIND} AS kind"
            f"  FROM {self._db}.runs FINAL WHERE {where}"
            " ) WHERE kind != 2 GROUP BY job_id"
            ")"
            + (" WHERE runs = 0 OR last_status IN {statuses:Array(String)}" if filtered else "")
            + " ORDER BY updated DESC, ns, name LIMIT {limit:UInt64} OFFSET {offset:UInt64}"
        )

    def _count_jobs(self, where: str, **parameters: Any) -> int:
        sql = f"SELECT uniqExact(job_id) FROM {self._db}.runs FINAL WHERE {where} AND {_KIND} != 2"
        return int(self._rows(sql, **parameters)[0][0])

    def jobs(self, namespace: str | None, states: Iterable[str] | None, limit: int, offset: int
             ) -> tuple[list[JobRecord], int]:  # fmt: skip
        """A page of jobs (of `namespace`, else of all), newest updated first, optionally only those whose
        latest run is in one of the Marquez `states` (jobs with no run always pass, as in Marquez), and
        the total count of the namespace's jobs."""
        where = "job_namespace = {ns:String}" if namespace is not None else "1"
        statuses = sorted({s for state in states for s in STATUSES_OF[state]}) if states is not None else None
        params: dict[str, Any] = {"ns": namespace or "", "limit": limit, "offset": offset}
        if statuses is not None:
            params["statuses"] = statuses
        rows = self._rows(self._job_page_sql(where, statuses is not None), **params)
        total = int(rows[0][5]) if rows else self._count_jobs(where, ns=namespace or "")
        return self._with_runs(rows), total

    def job(self, namespace: str, name: str) -> JobRecord | None:
        """One job with its newest runs; None when it was never seen."""
        sql = self._job_page_sql("job_id = {j:String}", False)
        rows = self._rows(sql, j=identity.job_id(namespace, name), limit=1, offset=0)
        found = self._with_runs(rows)
        return found[0] if found else None

    def _with_runs(self, rows: Sequence[Sequence[Any]]) -> list[JobRecord]:
        """The page's jobs with their newest runs, or their declaration when they have none (one query
        for the whole page)."""
        if not rows:
            return []
        by_job: dict[str, list[RunRecord]] = {str(r[0]): [] for r in rows}
        declared: dict[str, RunRecord] = {}
        for run in self.with_event_facets(self._newest_runs(list(by_job))):
            if not run.design:
                by_job[run.job_id].append(run)
            elif not by_job[run.job_id]:
                declared.setdefault(run.job_id, run)
        return [
            JobRecord(
                namespace=str(ns), name=str(name), created_at=int(created), updated_at=int(updated),
                runs=tuple(by_job[str(job)]), declared=None if by_job[str(job)] else declared.get(str(job)),
            )
            for job, ns, name, created, updated, _ in rows
        ]  # fmt: skip

    def _newest_runs(self, jobs: list[str]) -> list[RunRecord]:
        """Per job, its newest LATEST_RUNS runs (JobEvent declarations after every run), newest first."""
        sql = (
            f"SELECT {RUN_COLUMNS}, {_DESIGN} AS design FROM {self._db}.runs FINAL WHERE run_id IN ("
            " SELECT run_id FROM ("
            f"  SELECT run_id, job_id, started_at, {_UPDATED} AS t1, {_KIND} AS kind"
            f"  FROM {self._db}.runs FINAL WHERE job_id IN {{jobs:Array(String)}}"
            " ) WHERE kind != 2 ORDER BY kind, t1 DESC, started_at DESC, run_id DESC"
            f" LIMIT {LATEST_RUNS} BY job_id"
            f") ORDER BY design, {_UPDATED} DESC, started_at DESC, run_id DESC"
        )
        return [run_record(row, bool(row[-1])) for row in self._rows(sql, jobs=jobs)]

    # ---- runs ---------------------------------------------------------------------------------

    def runs(self, namespace: str, name: str, limit: int, offset: int) -> tuple[list[RunRecord], int] | None:
        """A page of the job's runs, newest started first (runs whose start was never seen last, as
        Marquez's NULLS LAST), and their count; None when the job was never seen."""
        terminal = ", ".join(f"'{s}'" for s in TERMINAL)
        sql = (
            f"SELECT {RUN_COLUMNS}, count() OVER () FROM {self._db}.runs FINAL"
            f" WHERE job_id = {{j:String}} AND NOT {_DESIGN}"
            f" ORDER BY revision <= 1 AND status IN ({terminal}), started_at DESC, run_id DESC"
            " LIMIT {limit:UInt64} OFFSET {offset:UInt64}"
        )
        job = identity.job_id(namespace, name)
        rows = self._rows(sql, j=job, limit=limit, offset=offset)
        if rows:
            return self.with_event_facets([run_record(row) for row in rows]), int(rows[0][-1])
        sql = (
            f"SELECT countIf({_KIND} = 0), countIf({_KIND} = 1) FROM {self._db}.runs FINAL WHERE job_id = {{j:String}}"
        )
        count, declared = (int(v) for v in self._rows(sql, j=job)[0])
        return None if count == 0 and declared == 0 else ([], count)

    def run(self, run_id: str) -> RunRecord | None:
        """One run (never a JobEvent's or DatasetEvent's declaration); None when there is no such run."""
        sql = f"SELECT {RUN_COLUMNS} FROM {self._db}.runs FINAL WHERE run_id = {{r:String}} AND NOT {_DESIGN}"
        rows = self._rows(sql, r=run_id)
        return self.with_event_facets([run_record(rows[0])])[0] if rows else None
