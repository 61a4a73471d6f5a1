"""Typed Python mirror of the `.avsc` files (the `.avsc` is the source of truth; a test checks they agree).

Plain dataclasses with `to_record()` / `from_record()` for the Avro dict form. No I/O, no Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas import identity

Record = dict[str, Any]


class EventType(StrEnum):
    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"
    OTHER = "OTHER"
    DRIFT = "DRIFT"
    QUALITY = "QUALITY"
    DEPLOY = "DEPLOY"
    RETIRE = "RETIRE"


class JobKind(StrEnum):
    INGEST = "INGEST"
    TRANSFORM = "TRANSFORM"
    FEATURE = "FEATURE"
    EMBED = "EMBED"
    INDEX = "INDEX"
    TRAIN = "TRAIN"
    EVALUATE = "EVALUATE"
    DEPLOY = "DEPLOY"
    PREDICT = "PREDICT"
    RETRIEVE = "RETRIEVE"
    GENERATE = "GENERATE"
    OTHER = "OTHER"


class ArtifactKind(StrEnum):
    """Known artifact kinds; `ArtifactRef.kind` also accepts free-form upper-case kinds."""

    DATASET = "DATASET"
    FEATURE = "FEATURE"
    FEATURE_VIEW = "FEATURE_VIEW"
    EMBEDDING = "EMBEDDING"
    VECTOR_INDEX = "VECTOR_INDEX"
    DOCUMENT = "DOCUMENT"
    CHUNK = "CHUNK"
    PROMPT = "PROMPT"
    MODEL = "MODEL"
    EVALUATION = "EVALUATION"
    DEPLOYMENT = "DEPLOYMENT"
    ENDPOINT = "ENDPOINT"
    PREDICTION = "PREDICTION"
    REPORT = "REPORT"
    DASHBOARD = "DASHBOARD"


node_id = identity.node_id  # one grammar for node ids: schemas/identity.py


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    kind: str
    namespace: str
    name: str
    version: str | None = None
    facets: str | None = None

    @property
    def node_id(self) -> str:
        return node_id(self.kind, self.namespace, self.name)

    def to_record(self) -> Record:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "facets": self.facets,
        }

    @classmethod
    def from_record(cls, r: Record) -> ArtifactRef:
        return cls(r["kind"], r["namespace"], r["name"], r.get("version"), r.get("facets"))


@dataclass(frozen=True, slots=True)
class LineageEvent:
    event_id: str
    event_time: int
    producer: str
    event_type: EventType
    job_namespace: str
    job_name: str
    run_id: str
    job_kind: JobKind = JobKind.OTHER
    parent_run_id: str | None = None
    inputs: tuple[ArtifactRef, ...] = ()
    outputs: tuple[ArtifactRef, ...] = ()
    facets: str = "{}"
    schema_url: str = "https://upriver.dev/schemas/lineage-event/v1.avsc"

    def to_record(self) -> Record:
        # Key order follows the .avsc field order (checked by tests/unit/test_schemas.py).
        return {
            "event_id": self.event_id,
            "event_time": self.event_time,
            "producer": self.producer,
            "schema_url": self.schema_url,
            "event_type": self.event_type.value,
            "job_namespace": self.job_namespace,
            "job_name": self.job_name,
            "job_kind": self.job_kind.value,
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "inputs": [a.to_record() for a in self.inputs],
            "outputs": [a.to_record() for a in self.outputs],
            "facets": self.facets,
        }

    @classmethod
    def from_record(cls, r: Record) -> LineageEvent:
        return cls(
            event_id=r["event_id"],
            event_time=r["event_time"],
            producer=r["producer"],
            schema_url=r.get("schema_url", "https://upriver.dev/schemas/lineage-event/v1.avsc"),
            event_type=EventType(r["event_type"]),
            job_namespace=r["job_namespace"],
            job_name=r["job_name"],
            job_kind=JobKind(r.get("job_kind", "OTHER")),
            run_id=r["run_id"],
            parent_run_id=r.get("parent_run_id"),
            inputs=tuple(ArtifactRef.from_record(a) for a in r.get("inputs", ())),
            outputs=tuple(ArtifactRef.from_record(a) for a in r.get("outputs", ())),
            facets=r.get("facets", "{}"),
        )


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    edge_type: str
    run_id: str
    job: str
    event_id: str
    event_time: int
    derived_at: int
    src_version: str | None = None
    dst_version: str | None = None
    valid_from: int = 0
    run_status: str = "COMPLETE"
    revision: int = 1
    append: bool = False
    subtype: str | None = None

    def to_record(self) -> Record:
        return {
            "src": self.src,
            "dst": self.dst,
            "edge_type": self.edge_type,
            "src_version": self.src_version,
            "dst_version": self.dst_version,
            "run_id": self.run_id,
            "job": self.job,
            "event_id": self.event_id,
            "event_time": self.event_time,
            "derived_at": self.derived_at,
            "valid_from": self.valid_from,
            "run_status": self.run_status,
            "revision": self.revision,
            "append": self.append,
            "subtype": self.subtype,
        }

    @classmethod
    def from_record(cls, r: Record) -> Edge:
        return cls(
            src=r["src"],
            dst=r["dst"],
            edge_type=r["edge_type"],
            src_version=r.get("src_version"),
            dst_version=r.get("dst_version"),
            run_id=r["run_id"],
            job=r["job"],
            event_id=r["event_id"],
            event_time=r["event_time"],
            derived_at=r["derived_at"],
            valid_from=r.get("valid_from", 0),
            run_status=r.get("run_status", "COMPLETE"),
            revision=r.get("revision", 1),
            append=r.get("append", False),
            subtype=r.get("subtype"),
        )


@dataclass(frozen=True, slots=True)
class Run:
    """The merged state of one run (`processors/lineage/runs.py` builds it; docs/lineage-model.md)."""

    run_id: str
    revision: int
    job_namespace: str
    job_name: str
    job_kind: str
    status: str
    started_at: int
    updated_at: int
    parent_run_id: str | None = None
    ended_at: int | None = None
    error: str | None = None
    inputs: tuple[ArtifactRef, ...] = ()
    outputs: tuple[ArtifactRef, ...] = ()
    facets: str = "{}"

    def to_record(self) -> Record:
        return {
            "run_id": self.run_id,
            "revision": self.revision,
            "job_namespace": self.job_namespace,
            "job_name": self.job_name,
            "job_kind": self.job_kind,
            "parent_run_id": self.parent_run_id,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "error": self.error,
            "inputs": [a.to_record() for a in self.inputs],
            "outputs": [a.to_record() for a in self.outputs],
            "facets": self.facets,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_record(cls, r: Record) -> Run:
        return cls(
            run_id=r["run_id"],
            revision=r["revision"],
            job_namespace=r["job_namespace"],
            job_name=r["job_name"],
            job_kind=r["job_kind"],
            parent_run_id=r.get("parent_run_id"),
            status=r["status"],
            started_at=r["started_at"],
            ended_at=r.get("ended_at"),
            error=r.get("error"),
            inputs=tuple(ArtifactRef.from_record(a) for a in r.get("inputs", ())),
            outputs=tuple(ArtifactRef.from_record(a) for a in r.get("outputs", ())),
            facets=r.get("facets", "{}"),
            updated_at=r["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    error_kind: str
    reason: str
    stage: str
    source_topic: str
    source_partition: int
    source_offset: int
    payload: bytes
    failed_at: int
    key: bytes | None = None

    def to_record(self) -> Record:
        return {
            "error_kind": self.error_kind,
            "reason": self.reason,
            "stage": self.stage,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "key": self.key,
            "payload": self.payload,
            "failed_at": self.failed_at,
        }

    @classmethod
    def from_record(cls, r: Record) -> DeadLetter:
        return cls(
            error_kind=r["error_kind"],
            reason=r["reason"],
            stage=r["stage"],
            source_topic=r["source_topic"],
            source_partition=r["source_partition"],
            source_offset=r["source_offset"],
            key=r.get("key"),
            payload=r["payload"],
            failed_at=r["failed_at"],
        )


# Which dataclass mirrors which .avsc file (used by the agreement test and the codec registry).
MODELS: dict[str, type[Any]] = {
    "lineage_event": LineageEvent,
    "edge": Edge,
    "run": Run,
    "dead_letter": DeadLetter,
}
