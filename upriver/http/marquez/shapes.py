"""Marquez's JSON shapes of namespaces, jobs and runs, built from upriver/readside/jobs.py's records. Pure.

Field names, types and nulls are Marquez's (api/.../service/models/Job.java, Run.java, Namespace.java as its
Jackson mapper writes them: every field present, null when absent; times as `Instant`s in ISO-8601 UTC with
the fraction only when there is one, `2026-01-01T00:00:00Z`, `2026-01-01T00:00:00.123Z`). Where Marquez
keeps a value Upriver does not, it is derived, and docs/marquez.md says how:
- run state: START/RUNNING/OTHER -> RUNNING, COMPLETE -> COMPLETED, FAIL -> FAILED, ABORT -> ABORTED, the
  Upriver-native signals (DRIFT, QUALITY, DEPLOY, RETIRE) -> COMPLETED; startedAt is null for a run whose
  only event was terminal (Marquez sets it on START/RUNNING only);
- versions are uuid5s: a job version of (namespace, name, inputs, outputs), the set Marquez hashes too; a
  dataset version of (its alias group's canonical namespace and name, the datasetVersion facet's version,
  else the writing run's id), one id under every name; a run's input is the version it read, its datasets
  named as the producer sent them (a job's: every name of each), so each id is in the versions list of the
  dataset under that name (upriver/readside/dataset_versions.py);
- a run's facets (run and job) are merged over all its events as Marquez merges them, read from its raw
  events (upriver/readside/run_facets.py); a facet name only its stored status-deciding event has (no raw
  events: Upriver's Avro emitters, or past the raw events' retention) is that event's; a job's facets are
  its current run's job facets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from schemas import identity
from schemas.openlineage import OpenLineageError, parse_time
from upriver.http.api import MarquezError
from upriver.readside.jobs import Artifact, JobRecord, NamespaceRecord, RunRecord
from upriver.readside.run_facets import JOB, RUN, normalised

if TYPE_CHECKING:
    from upriver.readside.lineage import LineageReader

VERSIONS = uuid.UUID("0d7a5f8e-3b1c-5e2a-9f4d-6c8b7a1e2d3f")  # the uuid5 namespace of Marquez-shaped ids
STATE = {
    "START": "RUNNING", "RUNNING": "RUNNING", "OTHER": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED",
    "ABORT": "ABORTED", "DRIFT": "COMPLETED", "QUALITY": "COMPLETED", "DEPLOY": "COMPLETED", "RETIRE": "COMPLETED",
}  # fmt: skip
# in `runs.facets` but not run facets (Upriver's; spark_unknown, which Marquez drops, run_facets.normalised drops too)
UPRIVER_KEYS = ("jobFacets", "openlineage", "spark_unknown")
# dataset facets that belong to the run (OpenLineage inputFacets / outputFacets): a run's dataset versions show these
INPUT_FACETS = ("dataQualityAssertions", "dataQualityMetrics", "icebergScanReport", "inputStatistics")
OUTPUT_FACETS = ("icebergCommitReport", "outputStatistics")
OWNER = "anonymous"  # the owner Marquez gives the namespaces OpenLineage events create


def iso(ms: int | None) -> str | None:
    """Epoch ms as Java's `Instant.toString()` (ISO_INSTANT): `…:05Z`, `…:05.120Z`; None stays None."""
    if ms is None:
        return None
    seconds, milli = divmod(int(ms), 1000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{milli:03d}Z" if milli else f"{base}Z"


def java_zoned(ms: int) -> str:
    """Epoch ms as Java's `ZonedDateTime.toString()` in UTC, as Marquez writes nominal times into run args
    (`2020-12-17T03:00Z[UTC]`: seconds only when not zero, the fraction only when there is one)."""
    seconds, milli = divmod(int(ms), 1000)
    t = datetime.fromtimestamp(seconds, UTC)
    text = t.strftime("%Y-%m-%dT%H:%M")
    if t.second or milli:
        text += f":{t.second:02d}"
    if milli:
        text += f".{milli:03d}"
    return text + "Z[UTC]"


def _ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value, "nominalTime")
    except OpenLineageError:
        return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _filled(merged: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The merged facets, and the stored ones of names the raw events lack (when some are past retention)."""
    out = dict(merged)
    for name, value in stored.items():
        out.setdefault(name, value)
    return out


def stored_facets_of(run: RunRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run facets, job facets) of the run's stored status-deciding event, as Marquez would record them."""
    try:
        stored = json.loads(run.facets)
    except (ValueError, RecursionError):
        stored = {}
    stored = _object(stored)
    run_facets = normalised({k: v for k, v in stored.items() if k not in UPRIVER_KEYS}, RUN)
    return run_facets, normalised(_object(stored.get("jobFacets")), JOB)


def facets_of(run: RunRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run facets, job facets) of a run as Marquez answers them: merged over its raw events, the stored
    status-deciding event's filling in (all of them when it has no raw events)."""
    run_facets, job_facets = stored_facets_of(run)
    if run.merged is None:
        return run_facets, job_facets
    return _filled(run.merged.run, run_facets), _filled(run.merged.job, job_facets)


def _id_uuid(*parts: Any) -> str:
    return str(uuid.uuid5(VERSIONS, json.dumps(parts, separators=(",", ":"), ensure_ascii=False)))


def dataset_version_id(namespace: str, name: str, version: str, run_id: str) -> str:
    """The uuid of a dataset version: of the version the producer named (datasetVersion facet), else of the run
    that wrote it ('' for an unversioned read). The datasets routes use the same function."""
    return _id_uuid("dataset", namespace, name, f"v:{version}" if version else f"r:{run_id}")


def job_version_id(namespace: str, name: str, inputs: Iterable[Artifact], outputs: Iterable[Artifact]) -> str:
    """The uuid of a job version: of its namespace, name and the sets of datasets it read and wrote."""
    ins = sorted({(a.namespace, a.name) for a in inputs})
    outs = sorted({(a.namespace, a.name) for a in outputs})
    return _id_uuid("job", namespace, name, ins, outs)


def job_uuid(namespace: str, name: str) -> str:
    """A stable uuid of a job (Marquez's parentJobUuid names the parent job's row)."""
    return _id_uuid("job", namespace, name)


def namespace_json(found: NamespaceRecord) -> dict[str, Any]:
    """Marquez's Namespace: created (and updated: OpenLineage never updates one) at its first event."""
    at = iso(found.created_at)
    return {"name": found.name, "createdAt": at, "updatedAt": at, "ownerName": OWNER, "description": None,
            "isHidden": False}  # fmt: skip


def _dataset_versions(run: RunRecord, artifacts: tuple[Artifact, ...], keep: tuple[str, ...], wrote: bool
                      ) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for a in sorted(artifacts, key=lambda a: (a.namespace, a.name)):
        facets: dict[str, Any] = {}
        if a.facets and any(f'"{k}"' in a.facets for k in keep):
            try:
                facets = {k: v for k, v in _object(json.loads(a.facets)).items() if k in keep}
            except (ValueError, RecursionError):
                facets = {}
        # an output is its run's version; an input the version it read (upriver/readside/dataset_versions.py),
        # else (not resolved) its producer version's, or the first read's
        version_of, by = (a.version, run.run_id) if wrote else (a.read or (a.version, ""))
        # the version's id is its dataset's, whichever name the run sent (a resolved node_id is the group's)
        ref = identity.parse(a.node_id) if identity.is_id(a.node_id) else None
        version = dataset_version_id(*((ref.namespace, ref.name) if ref else (a.namespace, a.name)), version_of, by)
        out.append({"datasetVersionId": {"namespace": a.namespace, "name": a.name, "version": version},
                    "facets": facets})  # fmt: skip
    return out


def _args(run_facets: Mapping[str, Any]) -> dict[str, str]:
    """Marquez's run args: the nominal times and the parent run, as its OpenLineage write path records them."""
    args: dict[str, str] = {}
    nominal = _object(run_facets.get("nominalTime"))
    start, end = _ms(nominal.get("nominalStartTime")), _ms(nominal.get("nominalEndTime"))
    if start is not None:
        args["nominal_start_time"] = java_zoned(start)
        if end is not None:
            args["nominal_end_time"] = java_zoned(end)
    parent = _object(run_facets.get("parent"))
    run, job = _object(parent.get("run")), _object(parent.get("job"))
    if isinstance(run.get("runId"), str) and isinstance(job.get("name"), str):
        args["run_id"], args["name"] = run["runId"], job["name"]
        args["namespace"] = str(job.get("namespace", ""))
    return args


def run_json(run: RunRecord) -> dict[str, Any]:
    """Marquez's Run: its facets merged over its events; its nominal times and args its status-deciding
    event's (Marquez's are the last-received event's nominal times and the first-received event's args)."""
    stored, _ = stored_facets_of(run)
    nominal = _object(stored.get("nominalTime"))
    started = run.started_at if run.start_seen else None
    ended = run.ended_at
    return {
        "id": run.run_id,
        "createdAt": iso(run.started_at),
        "updatedAt": iso(run.updated_at),
        "nominalStartTime": iso(_ms(nominal.get("nominalStartTime"))),
        "nominalEndTime": iso(_ms(nominal.get("nominalEndTime"))),
        "state": STATE.get(run.status, "RUNNING"),
        "startedAt": iso(started),
        "endedAt": iso(ended),
        "durationMs": None if started is None or ended is None else ended - started,
        "args": _args(stored),
        "jobVersion": {"namespace": run.namespace, "name": run.job_name,
                       "version": job_version_id(run.namespace, run.job_name, run.inputs, run.outputs)},
        "inputDatasetVersions": _dataset_versions(run, run.inputs, INPUT_FACETS, wrote=False),
        "outputDatasetVersions": _dataset_versions(run, run.outputs, OUTPUT_FACETS, wrote=True),
        "facets": facets_of(run)[0],
    }  # fmt: skip


def facets_json(run: RunRecord, kind: str) -> dict[str, Any]:
    """Marquez's RunFacets / JobFacets of one run (`kind`: RUN or JOB; DATASET, which Marquez answers with an
    empty body, with no facets)."""
    run_facets, job_facets = facets_of(run)
    return {"runId": run.run_id, "facets": {"RUN": run_facets, "JOB": job_facets}.get(kind, {})}


def _parent(name: str, run_facets: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the parent job, named as Marquez names it: the parent facet's job name, or, when
    that is the job's own name, the name up to its last dot (Airflow's dag.task)."""
    job = _object(_object(run_facets.get("parent")).get("job"))
    parent, namespace = job.get("name"), job.get("namespace")
    if not isinstance(parent, str) or not parent:
        return None
    if parent == name:
        parent = name.rpartition(".")[0]
    return (str(namespace or ""), parent) if parent and parent != name else None


def _labels(job_facets: Mapping[str, Any]) -> list[str]:
    job_type = _object(job_facets.get("jobType"))
    return [str(job_type[k]) for k in ("jobType", "integration") if job_type.get(k) is not None]


def _facet_tags(job_facets: Mapping[str, Any]) -> set[str]:
    entries = _object(job_facets.get("tags")).get("tags")
    keys = (tag.get("key") for tag in (entries if isinstance(entries, list) else ()) if isinstance(tag, dict))
    return {key for key in keys if isinstance(key, str) and key}


def _tags(job: JobRecord) -> list[str]:
    """The job's tags as looked up (upriver/readside/tags.py), else the keys of the newest OpenLineage `tags`
    job facet among its latest runs (its declaration's when it has none), sorted."""
    if job.tags is not None:
        return sorted(set(job.tags))
    for run in job.runs or ((job.declared,) if job.declared else ()):
        found = _facet_tags(facets_of(run)[1]) if run.merged is not None or '"tags"' in run.facets else set()
        if found:
            return sorted(found)
    return []


def _datasets(artifacts: Iterable[Artifact]) -> list[dict[str, str]]:
    """Every name of each dataset (JobVersionDao.findCurrentInputOutputDatasetsFor joins datasets_view)."""
    found = {n for a in artifacts for n in (a.names or ((a.namespace, a.name),))}
    return [{"namespace": ns, "name": name} for ns, name in sorted(found)]


def job_doc(job: JobRecord) -> dict[str, Any]:
    """Marquez's Job."""
    current = job.current
    run_facets, job_facets = facets_of(current) if current else ({}, {})
    parent = _parent(job.name, run_facets)
    simple = job.name
    if parent and job.name.startswith(parent[1] + "."):
        simple = job.name[len(parent[1]) + 1 :]
    processing = str(_object(job_facets.get("jobType")).get("processingType") or "")
    runs = [run_json(r) for r in job.runs]
    return {
        "id": {"namespace": job.namespace, "name": job.name},
        "type": "STREAM" if processing.upper() == "STREAMING" else "BATCH",
        "name": job.name,
        "simpleName": simple,
        "parentJobName": parent[1] if parent else None,
        "parentJobUuid": job_uuid(*parent) if parent else None,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "namespace": job.namespace,
        "inputs": _datasets(current.inputs if current else ()),
        "outputs": _datasets(current.outputs if current else ()),
        "location": _object(job_facets.get("sourceCodeLocation")).get("url"),
        "description": _object(job_facets.get("documentation")).get("description"),
        "latestRun": runs[0] if runs else None,
        "latestRuns": runs or None,
        "facets": job_facets,
        "currentVersion": job_version_id(job.namespace, job.name, current.inputs, current.outputs) if current else None,
        "labels": _labels(job_facets),
        "tags": _tags(job),
    }


# ---- lookups with Marquez's 404s -------------------------------------------------------------------


def namespace_missing(namespace: str) -> MarquezError:
    return MarquezError(404, f"Namespace '{namespace}' not found.")


def job_missing(reader: LineageReader, namespace: str, name: str) -> MarquezError:
    """Marquez's 404 for a job that is not there: of its namespace first, when that is not there either."""
    if reader.catalog_jobs.namespace(namespace) is None:
        return namespace_missing(namespace)
    return MarquezError(404, f"Job '{name}' not found.")


def complete(reader: LineageReader, jobs: Sequence[JobRecord]) -> list[JobRecord]:
    """The jobs with their current tags (upriver/readside/tags.py) and their runs' (and declarations')
    datasets as Marquez's answers name them, with the versions their inputs read
    (upriver/readside/dataset_versions.py): five queries for a whole page."""
    if not jobs:
        return []
    tags = reader.tags.jobs_tags([(j.namespace, j.name) for j in jobs])
    runs = iter(reader.catalog_datasets.resolve_runs([r for j in jobs for r in (*j.runs, j.declared) if r]))
    out = []
    for j in jobs:
        done = tuple(next(runs) for _ in j.runs)
        declared = next(runs) if j.declared else None
        out.append(replace(j, runs=done, declared=declared, tags=tuple(tags[(j.namespace, j.name)])))
    return out


def find_job(reader: LineageReader, namespace: str, name: str) -> JobRecord:
    """The job as `complete` gives it, or Marquez's 404."""
    found = reader.catalog_jobs.job(namespace, name)
    if found is None:
        raise job_missing(reader, namespace, name)
    return complete(reader, [found])[0]


def job_json(reader: LineageReader, namespace: str, name: str) -> dict[str, Any]:
    """Marquez's Job of one job (GET /namespaces/{ns}/jobs/{job} and the job tag writes answer it), or 404."""
    return job_doc(find_job(reader, namespace, name))
