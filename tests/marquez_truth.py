"""A reference model of Marquez's `GET /api/v1/lineage?nodeId=&depth=`, written from Marquez's source (the oracle
of tests/unit/test_marquez_lineage.py). Pure Python over the OpenLineage events in the order Marquez received them;
it calls no Upriver code but the Marquez nodeId parser (`schemas.identity.parse_marquez`).

What it follows (MarquezProject/marquez at a89b89c, paths under api/src/main/java/marquez/):

- Datasets (db/OpenLineageDao.java upsertLineageDataset, db/DatasetSymlinkDao.java): a dataset is one uuid under
  every name in `dataset_symlinks`: its own name (primary) and each `symlinks` facet identifier, inserted
  `ON CONFLICT (name, namespace_uuid) DO NOTHING`, so the first dataset to claim a name keeps it. Here a dataset's
  uuid is its primary (namespace, name). (Marquez also rewrites odd characters of namespace rows,
  `formatNamespaceName`; the events used here have none.)
- Job versions (db/OpenLineageDao.java updateMarquezModel, updateMarquezOnComplete, updateMarquezOnStreamingJob;
  db/JobVersionDao.java upsertJobVersionOnRunTransition, loadJobRowRunDetails, upsertRunlessJobVersion): a batch
  job gets a version when a run event is COMPLETE, FAIL or ABORT (`RunState.isDone`), from every input and output
  the run named so far (runs_input_mapping, dataset_versions.run_uuid); a STREAMING job (jobType facet
  processingType) on any event whose version is new (`versionExists`), except a terminal event naming no dataset;
  a JobEvent (no run) from its own inputs and outputs. The version is the hash of the job and its inputs and
  outputs; `upsertJobVersion ... ON CONFLICT(version)` keeps the first `created_at` (the event time).
- Current io (JobVersionDao.upsertInputDatasetFor / upsertOutputDatasetFor, markInputOrOutputDatasetAsPreviousFor):
  linking each input of a version clears `is_current_job_version` on the job's INPUT rows of other versions and
  sets it on its own; likewise outputs. So a job's current inputs are those of its latest version that has any
  inputs, and its current outputs those of its latest version that has any outputs (a version with none leaves the
  previous ones current).
- The walk (service/LineageService.java lineage, getJobUuid; db/LineageDao.java getJobFromInputOrOutput, getLineage):
  a job node starts from that job (404 when unknown); a dataset node from the job of the newest
  (`jv.created_at DESC`) version that wrote it (`io_type DESC`: OUTPUT first), else read it, over every version,
  current or not; no such job: the dataset alone ("orphan graph"). `getLineage` takes the jobs of `job_io` (the
  current rows) sharing any dataset with a job of the previous level (`array_cat(inputs, outputs) && ...`), for
  `depth` levels, both directions (a sibling reader of the same table is one level away); a start job without
  current rows is answered alone (`lineage_outside_job_io`). The datasets are the current inputs and outputs of
  the jobs reached; a dataset node missing from them gets the orphan graph. Edges (`toLineage`): input -> job and
  job -> output, for the jobs reached only. `datasetField:` and `run:` nodes are refused ("must be of type dataset
  or job").

Not modelled: job symlinks and hidden (deleted) jobs or datasets; the parent-job prefix Marquez puts on a child
job's name when it does not already start with the parent's (`buildJobFromEvent`); the source code location in the
version hash. Ties of `created_at` are left open: `lineage` answers every graph Marquez may answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.identity import parse_marquez

Key = tuple[str, str]  # (namespace, name): a job, or a dataset's uuid (its primary name)
Vertex = tuple[str, str, str]  # ("JOB" | "DATASET", namespace, name)
DONE = frozenset({"COMPLETE", "FAIL", "ABORT"})  # RunState.isDone: COMPLETED, FAILED, ABORTED


class MarquezNotFoundError(LookupError):
    """Marquez answers 404 (DatasetNotFoundException, JobNotFoundException, NodeIdNotFoundException)."""


@dataclass(frozen=True)
class Graph:
    nodes: frozenset[Vertex]
    edges: frozenset[tuple[Vertex, Vertex]]


@dataclass
class _Job:
    created_at: int
    inputs: frozenset[Key] = frozenset()  # the rows with is_current_job_version, INPUT
    outputs: frozenset[Key] = frozenset()
    has_current: bool = False  # any current row: the job is in LineageDao's job_io


@dataclass
class MarquezModel:
    """Marquez's tables as far as its lineage reads them, fed one event at a time (`send`)."""

    names: dict[Key, Key] = field(default_factory=dict)  # dataset_symlinks: every name -> the dataset's uuid
    jobs: dict[Key, _Job] = field(default_factory=dict)
    run_io: dict[str, tuple[set[Key], set[Key]]] = field(default_factory=dict)
    versions: dict[tuple[Key, frozenset[Key], frozenset[Key]], int] = field(default_factory=dict)  # -> created_at
    # job_versions_io_mapping, every version: (job, version, dataset, io_type)
    mapping: set[tuple[Key, tuple[Key, frozenset[Key], frozenset[Key]], Key, str]] = field(default_factory=set)

    def dataset(self, namespace: str, name: str) -> Key | None:
        """The dataset a name belongs to (its uuid), None when Marquez never saw the name."""
        return self.names.get((namespace, name))

    def send(self, event: Mapping[str, Any]) -> None:
        t = _ms(event["eventTime"])
        if "job" not in event:  # a DatasetEvent: the dataset only
            self._dataset(event["dataset"])
            return
        job_key = (event["job"]["namespace"], event["job"]["name"])
        job = self.jobs.setdefault(job_key, _Job(created_at=t))
        ins = [self._dataset(d) for d in event.get("inputs") or ()]
        outs = [self._dataset(d) for d in event.get("outputs") or ()]
        if "run" not in event:  # a JobEvent: upsertRunlessJobVersion, created at the job's creation
            self._version(job_key, job, frozenset(ins), frozenset(outs), job.created_at)
            return
        run_ins, run_outs = self.run_io.setdefault(event["run"]["runId"], (set(), set()))
        run_ins.update(ins)
        run_outs.update(outs)
        etype = str(event.get("eventType") or "").upper()
        version = (job_key, frozenset(run_ins), frozenset(run_outs))
        if _streaming(event):
            if etype in DONE and not ins and not outs:  # isTerminalEventForStreamingJobWithNoDatasets
                return
            if version not in self.versions:  # only a new version is written
                self._version(job_key, job, version[1], version[2], t)
        elif etype in DONE:
            self._version(job_key, job, version[1], version[2], t)

    def _dataset(self, doc: Mapping[str, Any]) -> Key:
        own = (doc["namespace"], doc["name"])
        uuid = self.names.setdefault(own, own)
        symlinks = ((doc.get("facets") or {}).get("symlinks") or {}).get("identifiers") or ()
        for link in symlinks:
            self.names.setdefault((link["namespace"], link["name"]), uuid)  # ON CONFLICT DO NOTHING
        return uuid

    def _version(self, key: Key, job: _Job, ins: frozenset[Key], outs: frozenset[Key], t: int) -> None:
        version = (key, ins, outs)
        self.versions.setdefault(version, t)  # ON CONFLICT(version): created_at stays
        self.mapping.update((key, version, d, "INPUT") for d in ins)
        self.mapping.update((key, version, d, "OUTPUT") for d in outs)
        if ins:
            job.inputs, job.has_current = ins, True
        if outs:
            job.outputs, job.has_current = outs, True

    # ---- the lineage answer -------------------------------------------------------------------------

    def lineage(self, node_id: str, depth: int) -> list[Graph]:
        """Every graph Marquez may answer (one unless `created_at` ties leave the start job open)."""
        marquez = parse_marquez(node_id)
        ask = (marquez.namespace, marquez.name)
        if marquez.type == "job":
            if ask not in self.jobs:
                raise MarquezNotFoundError(f"Job '{marquez.name}' not found.")
            return [self._graph(ask, depth, None)]
        if marquez.type != "dataset":
            raise MarquezNotFoundError(f"Node '{node_id}' must be of type dataset or job!")
        uuid = self.names.get(ask)
        if uuid is None:
            raise MarquezNotFoundError(f"Dataset '{marquez.name}' not found.")
        starts = self.start_jobs(uuid)
        if not starts:
            return [_orphan(uuid)]
        return [self._graph(job, depth, uuid) for job in starts]

    def start_jobs(self, uuid: Key) -> list[Key]:
        """getJobFromInputOrOutput: ORDER BY io_type DESC, jv.created_at DESC LIMIT 1, every tie kept."""
        rows = [(io == "OUTPUT", self.versions[v], job) for job, v, d, io in self.mapping if d == uuid]
        if not rows:
            return []
        best = max((wrote, created) for wrote, created, _ in rows)
        return sorted({job for wrote, created, job in rows if (wrote, created) == best})

    def _graph(self, start: Key, depth: int, dataset: Key | None) -> Graph:
        reached = self._reach(start, depth)
        datasets = {d for j in reached for d in (*self.jobs[j].inputs, *self.jobs[j].outputs)}
        if dataset is not None and dataset not in datasets:  # "no longer share lineage with dataset"
            return _orphan(dataset)
        nodes: set[Vertex] = {("JOB", *j) for j in reached} | {("DATASET", *d) for d in datasets}
        edges = {(("DATASET", *d), ("JOB", *j)) for j in reached for d in self.jobs[j].inputs}
        edges |= {(("JOB", *j), ("DATASET", *d)) for j in reached for d in self.jobs[j].outputs}
        return Graph(frozenset(nodes), frozenset(edges))

    def _reach(self, start: Key, depth: int) -> set[Key]:
        """getLineage's recursive CTE: level 0 the start job, level n+1 every job of job_io sharing a dataset
        with a job of level n, while depth < :depth; a start job outside job_io is answered alone."""
        io = {k: (j.inputs | j.outputs) for k, j in self.jobs.items() if j.has_current}
        if start not in io:
            return {start}
        reached, level = {start}, {start}
        for _ in range(depth):
            touched = set().union(*(io[j] for j in level))
            level = {k for k, ds in io.items() if k not in reached and ds & touched}
            if not level:
                break
            reached |= level
        return reached


def _orphan(uuid: Key) -> Graph:
    """toLineageWithOrphanDataset: the dataset alone, under its primary name."""
    return Graph(frozenset({("DATASET", *uuid)}), frozenset())


def _streaming(event: Mapping[str, Any]) -> bool:
    """LineageEvent.Job.isStreamingJob: the jobType facet's processingType is STREAMING (any case)."""
    job_type = ((event.get("job") or {}).get("facets") or {}).get("jobType") or {}
    return str(job_type.get("processingType") or "").upper() == "STREAMING"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def model_of(events: Iterable[Mapping[str, Any]]) -> MarquezModel:
    """The model after receiving `events` in order."""
    model = MarquezModel()
    for event in events:
        model.send(event)
    return model
