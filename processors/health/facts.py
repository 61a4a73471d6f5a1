"""What a merged Run record says, for the health engine: the pending run it becomes, its facts' order,
and the facets that matter (design time, declared SLA, streaming jobs, drift and quality drops).

Pure functions of the record; the run statuses and artifact kinds the conditions distinguish.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from sys import intern
from typing import Any

from processors.health.config import parse_duration
from processors.health.state import Artifact, PendingRun
from processors.lineage.runs import facet
from schemas import identity

# kinds whose nodes need upstream lineage, and the kinds a drift is linked to
REQUIRES_UPSTREAM = frozenset({"MODEL", "DEPLOYMENT", "ENDPOINT", "EMBEDDING", "VECTOR_INDEX"})
MODEL_KINDS = frozenset({"MODEL"})
SERVING_KINDS = frozenset({"DEPLOYMENT", "ENDPOINT"})
DRIFT_TARGETS = MODEL_KINDS | SERVING_KINDS
NOT_VALID = frozenset({"FAIL", "ABORT"})
TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})
SIGNALS = frozenset({"DRIFT", "QUALITY", "DEPLOY", "RETIRE"})
# the order of facts at the same time: starts, then ends, then signals (docs/health.md, "Order")
START, END, SIGNAL = 0, 1, 2


def pending_run(record: Mapping[str, Any], started: bool) -> PendingRun:
    """The run a merged Run record describes; `started`: its start fact was applied already."""
    status = record["status"]
    ended = record.get("ended_at") if status in TERMINAL or status in SIGNALS else None
    return PendingRun(
        revision=record["revision"],
        job=intern(identity.job_id(record["job_namespace"], record["job_name"])),
        kind=intern(record.get("job_kind") or "OTHER"),
        status=intern(status),
        started_at=record["started_at"],
        ended_at=ended,
        inputs=_artifacts(record, "inputs"),
        outputs=_artifacts(record, "outputs"),
        facets=record.get("facets") or "{}",
        started=started,
    )


def end_order(run: PendingRun) -> int:
    """Where the run's last fact sorts among the facts of its time."""
    return SIGNAL if run.status in SIGNALS else END


def _artifacts(record: Mapping[str, Any], side: str) -> list[Artifact]:
    items = record.get(side, ())
    return [artifact(a["kind"], a["namespace"], a["name"], a.get("version"), a.get("facets")) for a in items]


def artifact(kind: str, namespace: str, name: str, version: str | None, facets: str | None) -> Artifact:
    """An Artifact whose strings are interned: the runs awaiting their facts name the same few thousand
    artifacts again and again (one copy each instead of one per run: docs/performance.md, "Worker memory")."""
    return Artifact(intern(kind), intern(namespace), intern(name), _intern(version), _intern(facets))


def _intern(text: str | None) -> str | None:
    return None if text is None else intern(text)


def design_time(facets: str | None) -> bool:
    """An OpenLineage JobEvent or DatasetEvent: a declaration, not an execution."""
    found = facet(facets, "openlineage")
    return isinstance(found, dict) and found.get("designTime") is True


def declared_sla(facets: str | None) -> int | None:
    """`{"freshness": {"slaSeconds": 3600}}` (or `"sla": "1h"`) on an output declares its SLA."""
    f = facet(facets, "freshness")
    if not isinstance(f, dict):
        return None
    try:
        if "slaSeconds" in f:
            return int(float(f["slaSeconds"]) * 1000)
        if "sla" in f:
            return parse_duration(f["sla"])
    except (TypeError, ValueError):
        return None
    return None


def is_streaming(facets: str) -> bool:
    """An OpenLineage jobType facet (at the top of the run's facets or under `jobFacets`) saying STREAMING."""
    if '"STREAMING"' not in facets:
        return False
    try:
        doc = json.loads(facets)
    except ValueError:
        return False
    for holder in (doc, doc.get("jobFacets") if isinstance(doc, dict) else None):
        job_type = holder.get("jobType") if isinstance(holder, dict) else None
        if isinstance(job_type, dict) and str(job_type.get("processingType", "")).upper() == "STREAMING":
            return True
    return False


def is_drop(status: str, facets: str) -> bool:
    """A DRIFT signal unless it says `drifted: false`; a QUALITY signal unless it says `passed: true`."""
    if status == "DRIFT":
        d = facet(facets, "drift")
        return not (isinstance(d, dict) and d.get("drifted") is False)
    if status == "QUALITY":
        q = facet(facets, "quality")
        return not (isinstance(q, dict) and q.get("passed") is True)
    return False


def failed_assertions(facets: str | None) -> bool:
    """Whether an artifact's `dataQualityAssertions` facet holds an assertion with `success: false`."""
    if not facets or '"dataQualityAssertions"' not in facets:
        return False
    found = facet(facets, "dataQualityAssertions")
    items = found.get("assertions") if isinstance(found, dict) else None
    return any(isinstance(x, dict) and x.get("success") is False for x in items or ())


def expected_io(facets: str) -> tuple[set[str], set[str]]:
    """Inputs and outputs a run declares in an `expectedIO` facet (node ids)."""
    declared = facet(facets, "expectedIO")
    if not isinstance(declared, dict):
        return set(), set()
    inputs = {x for x in declared.get("inputs", ()) if isinstance(x, str)}
    return inputs, {x for x in declared.get("outputs", ()) if isinstance(x, str)}


def namespace_of(subject: str) -> str:
    """Namespace of a subject id (a job's or an artifact's), read through the identity module."""
    return identity.parse(subject).namespace


def job_path(job: str) -> str:
    """`namespace/name` of a job id: what `[[job]]` rules glob over (docs/health.md)."""
    ref = identity.parse(job)
    return f"{ref.namespace}/{ref.name}"
