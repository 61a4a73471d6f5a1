"""OpenLineage events (RunEvent, DatasetEvent, JobEvent; JSON) -> Upriver LineageEvent records. Pure.

Strict where the OpenLineage spec requires (eventTime, producer, run.runId, job namespace and name,
dataset namespace and name): an event missing one is rejected with a reason naming the field. Lenient
elsewhere: every facet is kept (unknown or malformed ones as opaque JSON) and an odd facet never drops
the event's lineage. docs/openlineage.md has the mapping table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from schemas import identity

Record = dict[str, Any]

MAX_EVENT_BYTES = 4 * 1024 * 1024  # larger events are rejected (multi-MB SQL facets are seen in the wild)
# Kafka's message size limit on the stack's own topics: their max.message.bytes at creation, the local and compose
# brokers' message.max.bytes, every producer's message.max.bytes (docs/openlineage.md, "Size limits"). Twice an
# event: a MAX_EVENT_BYTES event's Avro record and run record are ~1.07x its JSON (Spark plans; facets are
# re-serialised with spaces and ASCII escapes) and the worker's run-state changelog record ~1.17x.
MAX_MESSAGE_BYTES = 2 * MAX_EVENT_BYTES
MAX_DEPTH = 64  # objects/arrays nested deeper are rejected (real producers stay under ~15: Spark's plans)
TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels (docs/openlineage.md)"
EVENT_TYPES = frozenset({"START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"})
# jobType.jobType (dbt, Spark, Airflow ... vocabulary) -> Upriver job kind; the rest is OTHER
JOB_TYPES = {
    "QUERY": "TRANSFORM",
    "SQL": "TRANSFORM",
    "MODEL": "TRANSFORM",
    "SNAPSHOT": "TRANSFORM",
    "SEED": "INGEST",
    "COPY": "INGEST",
    "TRAIN": "TRAIN",
    "TRAINING": "TRAIN",
    "EVALUATE": "EVALUATE",
    "PREDICT": "PREDICT",
    "INFERENCE": "PREDICT",
    "EMBED": "EMBED",
}
SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"  # an event without a schemaURL
PRODUCER_NS = uuid.UUID("6f1c2a3b-9d4e-4f50-8a61-7b8c9d0e1f23")  # event ids of OpenLineage events


# Prebuilt encoders: json.dumps builds an encoder on every call with arguments. No circular check: the input is
# parsed JSON, which cannot hold a cycle. The same output as json.dumps(..., sort_keys=True[, separators]).
_sorted_json = json.JSONEncoder(sort_keys=True, check_circular=False).encode  # facets as stored
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False).encode  # event ids


class OpenLineageError(ValueError):
    """The event cannot be taken; the message says why (it goes into the HTTP 400 / the dead letter)."""


def decode(payload: bytes, max_bytes: int = MAX_EVENT_BYTES) -> Any:
    """Parsed JSON of at most `max_bytes`, nested at most MAX_DEPTH deep; OpenLineageError says why not."""
    if len(payload) > max_bytes:
        raise OpenLineageError(f"event is {len(payload):,} bytes; the limit is {max_bytes:,} (docs/openlineage.md)")
    try:
        doc = json.loads(payload)
    except RecursionError:
        raise OpenLineageError(TOO_DEEP) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise OpenLineageError(f"not JSON: {exc}") from None
    if too_deep(payload, doc):
        raise OpenLineageError(TOO_DEEP)
    return doc


def too_deep(payload: bytes, doc: Any) -> bool:
    """Whether `doc`, parsed from `payload`, nests objects/arrays more than MAX_DEPTH deep. Nesting can be no
    deeper than the count of opening brackets (those inside strings only add to it): a C-speed count spares
    most real events (dbt, Flink, the Python client: 8-62) the walk."""
    return payload.count(b"{") + payload.count(b"[") > MAX_DEPTH and _deeper_than(doc, MAX_DEPTH)


def _deeper_than(doc: Any, limit: int) -> bool:
    """Whether objects/arrays nest more than `limit` deep (iterative: deep input must not recurse here)."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def is_unicode(*values: str) -> bool:
    """Whether every value is valid Unicode: JSON's "\\ud800" escapes decode to lone surrogates, which neither
    UTF-8 nor Avro can carry (the event could not be encoded)."""
    try:
        for value in values:
            if not value.isascii():
                value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise OpenLineageError(f"{where}{key} is required (a non-empty string), got {value!r}")
    if not is_unicode(value):
        raise OpenLineageError(f"{where}{key} {value!r} is not valid Unicode (a lone surrogate)")
    return value


def parse_time(text: str, where: str = "eventTime") -> int:
    """ISO 8601 with an offset (or Z) -> epoch ms; a time without an offset is taken as UTC."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise OpenLineageError(f"{where} {text!r} is not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def _facets(obj: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        value = obj.get(key)
        if isinstance(value, dict):
            out.update(value)
    return out


def _symlinks(facets: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(namespace, name, type) of each well-formed identifier of a `symlinks` facet, in the facet's order."""
    symlinks = facets.get("symlinks")
    identifiers = symlinks.get("identifiers") if isinstance(symlinks, dict) else None
    out = []
    for ident in identifiers if isinstance(identifiers, list) else ():
        if isinstance(ident, dict):
            ns, name = ident.get("namespace"), ident.get("name")
            if isinstance(ns, str) and isinstance(name, str) and ns and name and is_unicode(ns, name):
                out.append((ns, name, str(ident.get("type", "")).upper()))
    return out


def _canonical(ds: Mapping[str, Any], facets: Mapping[str, Any]) -> tuple[str, str]:
    """A dataset's node name: its first TABLE symlink when it has one (so a table read by path and by name
    is one node), else its own namespace and name (docs/lineage-model.md, "Aliases")."""
    for ns, name, kind in _symlinks(facets):
        if kind == "TABLE":
            return ns, name
    return ds["namespace"], ds["name"]


def aliases_of(facets: str | None) -> list[tuple[str, str]]:
    """The other names (namespace, name) an artifact was sent under: its `upriverAliases` facet, which
    `_artifact` writes from the physical name and every symlink (docs/lineage-model.md, "Aliases")."""
    if not facets or '"upriverAliases"' not in facets:
        return []
    try:
        found = json.loads(facets).get("upriverAliases")
    except (ValueError, AttributeError, RecursionError):  # odd or absurdly deep facets read as absent
        return []
    out: list[tuple[str, str]] = []
    for alias in found if isinstance(found, list) else ():
        if isinstance(alias, dict) and isinstance(alias.get("namespace"), str) and isinstance(alias.get("name"), str):
            out.append((alias["namespace"], alias["name"]))
    return out


def _datasets(doc: Mapping[str, Any], side: str, facet_key: str) -> list[tuple[str, str, Record]]:
    raw = doc.get(side) or []
    if not isinstance(raw, list):
        raise OpenLineageError(f"{side} must be a list, got {type(raw).__name__}")
    out = []
    for i, ds in enumerate(raw):
        if not isinstance(ds, dict):
            raise OpenLineageError(f"{side}[{i}] must be an object")
        _text(ds, "namespace", f"{side}[{i}].")
        _text(ds, "name", f"{side}[{i}].")
        out.append((ds["namespace"], ds["name"], _facets(ds, "facets", facet_key)))
    return out


def _artifact(ns: str, name: str, facets: Record, alias: Mapping[tuple[str, str], tuple[str, str]]) -> Record:
    cns, cname = alias[(ns, name)]
    facets = dict(facets)
    others = [(ns, name)] + [(n, m) for n, m, _ in _symlinks(facets)]
    names = sorted({pair for pair in others if pair != (cns, cname)})
    if names:  # every other name this dataset was sent under resolves to the node (processors/lineage/runs.py)
        facets["upriverAliases"] = [{"namespace": n, "name": m} for n, m in names]
    lineage = facets.get("columnLineage")
    if isinstance(lineage, dict) and isinstance(lineage.get("fields"), dict):
        # column sources name datasets as the event does: point them at the same nodes
        fields = {}
        for column, spec in lineage["fields"].items():
            if isinstance(spec, dict) and isinstance(spec.get("inputFields"), list):
                spec = {**spec, "inputFields": [_aliased(f, alias) for f in spec["inputFields"]]}
            fields[column] = spec
        facets["columnLineage"] = {**lineage, "fields": fields}
    version = facets.get("version")
    dataset_version = version.get("datasetVersion") if isinstance(version, dict) else None
    text_version = str(dataset_version) if dataset_version not in (None, "") else None
    return {
        "kind": "DATASET",
        "namespace": cns,
        "name": cname,
        "version": text_version if text_version is None or is_unicode(text_version) else None,
        "facets": _sorted_json(facets) if facets else None,
    }


def _aliased(field: Any, alias: Mapping[tuple[str, str], tuple[str, str]]) -> Any:
    if (
        isinstance(field, dict)
        and isinstance(field.get("namespace"), str)
        and isinstance(field.get("name"), str)
        and (field["namespace"], field["name"]) in alias
    ):
        ns, name = alias[(field["namespace"], field["name"])]
        return {**field, "namespace": ns, "name": name}
    return field


def event_id(doc: Mapping[str, Any]) -> str:
    """The same event sent twice (a client's retry) gets the same id, so dedup drops the copy."""
    return str(uuid.uuid5(PRODUCER_NS, _canonical_json(doc)))


def to_record(doc: Any) -> Record:
    """The LineageEvent record (Avro dict form) for one OpenLineage event, or OpenLineageError."""
    if not isinstance(doc, dict):
        raise OpenLineageError(f"an OpenLineage event is a JSON object, got {type(doc).__name__}")
    event_time = parse_time(_text(doc, "eventTime", ""))
    producer = _text(doc, "producer", "")
    run = doc.get("run")
    job = doc.get("job")
    dataset = doc.get("dataset")
    if run is None and job is None and isinstance(dataset, dict):
        return _dataset_event(doc, dataset, event_time, producer)
    if not isinstance(job, dict):
        raise OpenLineageError("job is required (an object with namespace and name)")
    job_ns, job_name = _text(job, "namespace", "job."), _text(job, "name", "job.")
    job_facets = _facets(job, "facets")
    design_time = run is None
    if run is None:  # a JobEvent: the job's declared lineage, as one run per job (never counted as a run)
        run_id, run_facets, etype = str(uuid.uuid5(PRODUCER_NS, identity.job_id(job_ns, job_name))), {}, "OTHER"
    else:
        if not isinstance(run, dict):
            raise OpenLineageError("run must be an object with a runId")
        run_id = _text(run, "runId", "run.")
        run_facets = _facets(run, "facets")
        raw_type = doc.get("eventType") or "OTHER"
        etype = raw_type if isinstance(raw_type, str) and raw_type in EVENT_TYPES else "OTHER"
    inputs = _datasets(doc, "inputs", "inputFacets")
    outputs = _datasets(doc, "outputs", "outputFacets")
    alias = {(ns, name): _canonical({"namespace": ns, "name": name}, f) for ns, name, f in (*inputs, *outputs)}
    parent = run_facets.get("parent")
    parent_run = parent.get("run") if isinstance(parent, dict) else None
    parent_id = parent_run.get("runId") if isinstance(parent_run, dict) else None
    job_type = job_facets.get("jobType")
    kind = "OTHER"
    if isinstance(job_type, dict):
        kind = JOB_TYPES.get(str(job_type.get("jobType", "")).upper(), "OTHER")
    facets: Record = dict(run_facets)
    if job_facets:
        facets["jobFacets"] = job_facets
    facets["openlineage"] = {
        "eventType": doc.get("eventType"),
        "schemaURL": doc.get("schemaURL"),
        "producer": producer,
    }
    if design_time:
        facets["openlineage"]["designTime"] = True
    return {
        "event_id": event_id(doc),
        "event_time": event_time,
        "producer": producer,
        "schema_url": _schema_url(doc),
        "event_type": etype,
        "job_namespace": job_ns,
        "job_name": job_name,
        "job_kind": kind,
        "run_id": run_id,
        "parent_run_id": parent_id if isinstance(parent_id, str) and parent_id and is_unicode(parent_id) else None,
        "inputs": [_artifact(ns, name, f, alias) for ns, name, f in inputs],
        "outputs": [_artifact(ns, name, f, alias) for ns, name, f in outputs],
        "facets": _sorted_json(facets),
    }


def _schema_url(doc: Mapping[str, Any]) -> str:
    url = str(doc.get("schemaURL") or SPEC_URL)
    return url if is_unicode(url) else SPEC_URL  # the odd value stays in the facets (JSON escapes it)


def _dataset_event(doc: Mapping[str, Any], dataset: Mapping[str, Any], event_time: int, producer: str) -> Record:
    """A DatasetEvent: the dataset's metadata (schema, owner, tags ...) as an input of a per-dataset run."""
    ns, name = _text(dataset, "namespace", "dataset."), _text(dataset, "name", "dataset.")
    facets = _facets(dataset, "facets")
    alias = {(ns, name): _canonical(dataset, facets)}
    return {
        "event_id": event_id(doc),
        "event_time": event_time,
        "producer": producer,
        "schema_url": _schema_url(doc),
        "event_type": "OTHER",
        "job_namespace": ns,
        "job_name": "openlineage.dataset-event",
        "job_kind": "OTHER",
        "run_id": str(uuid.uuid5(PRODUCER_NS, identity.node_id("DATASET", ns, name))),
        "parent_run_id": None,
        "inputs": [_artifact(ns, name, facets, alias)],
        "outputs": [],
        "facets": json.dumps({"openlineage": {"designTime": True, "eventType": "DATASET", "producer": producer}}),
    }
