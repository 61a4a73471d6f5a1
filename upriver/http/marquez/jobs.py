"""Marquez's namespace, job and run routes (NamespaceResource, JobResource, RunResource): its paths, paging
(limit 100, offset 0), `totalCount`s, sort orders and 404/400 bodies; the shapes are upriver/http/marquez/
shapes.py's and the rows upriver/readside/jobs.py's (`reader.catalog_jobs`).
"""

from __future__ import annotations

from upriver.http import routes
from upriver.http.api import Answer, MarquezError
from upriver.http.marquez import shapes
from upriver.http.marquez.params import LIMIT, OFFSET, enum, page, required
from upriver.http.spec import Param, Query
from upriver.readside.jobs import RunRecord
from upriver.readside.lineage import LineageReader

RUN_STATES = ("NEW", "RUNNING", "COMPLETED", "ABORTED", "FAILED", "OTHER")  # Marquez's RunState
FACET_TYPES = ("RUN", "JOB", "DATASET")  # Marquez's FacetType
LAST_RUN_STATES = Param("lastRunStates", "words", "only jobs whose latest run is in one of these states (NEW, "
                        "RUNNING, COMPLETED, ABORTED, FAILED, OTHER; repeated or comma-separated); jobs "
                        "with no run always pass")  # fmt: skip
FACET_TYPE = Param("type", description="run: the run's facets; job: its job's facets", required=True,
                   enum=("run", "job"), example="run")  # fmt: skip


def find_run(reader: LineageReader, run_id: str) -> RunRecord:
    found = reader.catalog_jobs.run(run_id)
    if found is None:
        raise MarquezError(404, f"Run '{run_id}' not found.")
    return found


@routes.get("/api/v1/namespaces", "Marquez: the namespaces, by name", LIMIT, OFFSET,
            answer="Marquez's NamespaceList", marquez=True)  # fmt: skip
def marquez_namespaces(reader: LineageReader, q: Query) -> Answer:
    limit, offset = page(q)
    found = reader.catalog_jobs.namespaces()[offset : offset + limit]
    return {"namespaces": [shapes.namespace_json(n) for n in found]}


@routes.get("/api/v1/namespaces/{namespace}", "Marquez: one namespace", answer="Marquez's Namespace", marquez=True)
def marquez_namespace(reader: LineageReader, q: Query) -> Answer:
    name = q.segment("namespace")
    found = reader.catalog_jobs.namespace(name)
    if found is None:
        raise shapes.namespace_missing(name)
    return shapes.namespace_json(found)


def _jobs(reader: LineageReader, q: Query, namespace: str | None) -> Answer:
    limit, offset = page(q)
    words = q.words("lastRunStates")
    states = enum("lastRunStates", sorted(words), RUN_STATES) if words else None
    found, total = reader.catalog_jobs.jobs(namespace, states, limit, offset)
    # tags and run datasets as the job's own page shows them, looked up for the whole page at once
    return {"jobs": [shapes.job_doc(j) for j in shapes.complete(reader, found)], "totalCount": total}


@routes.get("/api/v1/namespaces/{namespace}/jobs", "Marquez: a namespace's jobs, newest updated first",
            LIMIT, OFFSET, LAST_RUN_STATES, answer="Marquez's JobList (jobs, totalCount)", marquez=True)  # fmt: skip
def marquez_namespace_jobs(reader: LineageReader, q: Query) -> Answer:
    return _jobs(reader, q, q.segment("namespace"))


@routes.get("/api/v1/jobs", "Marquez: every namespace's jobs, newest updated first", LIMIT, OFFSET,
            LAST_RUN_STATES, answer="Marquez's JobList (jobs, totalCount)", marquez=True)  # fmt: skip
def marquez_jobs(reader: LineageReader, q: Query) -> Answer:
    return _jobs(reader, q, None)


@routes.get("/api/v1/namespaces/{namespace}/jobs/{job}", "Marquez: one job with its latest runs",
            answer="Marquez's Job", marquez=True)  # fmt: skip
def marquez_job(reader: LineageReader, q: Query) -> Answer:
    return shapes.job_json(reader, q.segment("namespace"), q.segment("job"))


@routes.get("/api/v1/namespaces/{namespace}/jobs/{job}/runs", "Marquez: a job's runs, newest started first",
            LIMIT, OFFSET, answer="Marquez's RunList (runs, totalCount)", marquez=True)  # fmt: skip
def marquez_job_runs(reader: LineageReader, q: Query) -> Answer:
    namespace, name = q.segment("namespace"), q.segment("job")
    limit, offset = page(q)
    found = reader.catalog_jobs.runs(namespace, name, limit, offset)
    if found is None:
        raise shapes.job_missing(reader, namespace, name)
    runs, total = found
    return {"runs": [shapes.run_json(r) for r in reader.catalog_datasets.resolve_runs(runs)], "totalCount": total}


@routes.get("/api/v1/jobs/runs/{id}", "Marquez: one run", answer="Marquez's Run", marquez=True)
def marquez_run(reader: LineageReader, q: Query) -> Answer:
    # its datasets named, and its inputs' versions, as the datasets routes answer them
    return shapes.run_json(reader.catalog_datasets.resolve_runs([find_run(reader, q.segment("id"))])[0])


@routes.get("/api/v1/jobs/runs/{id}/facets", "Marquez: a run's run facets or its job's facets", FACET_TYPE,
            answer="Marquez's RunFacets / JobFacets (runId, facets)", marquez=True)  # fmt: skip
def marquez_run_facets(reader: LineageReader, q: Query) -> Answer:
    given = q.text("type")  # Marquez reads the parameter before it looks for the run
    if not given:
        raise required("type")
    kind = enum("type", [given], FACET_TYPES)[0]
    return shapes.facets_json(find_run(reader, q.segment("id")), kind)
