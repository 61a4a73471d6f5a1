"""Marquez's `/api/v2beta/search/jobs` and `/search/datasets` (api/.../v2beta/SearchResource.java), which
Marquez answers from OpenSearch and its web UI calls when built with REACT_APP_ADVANCED_SEARCH (docs/marquez.md,
Search). Answered from ClickHouse (upriver/readside/dataset_search.py): `{"hits": [...], "highlights": [...]}`,
one hit per dataset or job (Marquez indexes one document per dataset and per job, the last event's), at
most OpenSearch's default 10. A hit is the document Marquez indexes; its highlights are the fields Marquez
searches (SearchService's DATASET_FIELDS and JOB_FIELDS) whose value contains q, case-insensitive, with each
occurrence in `<em>…</em>` (OpenSearch matches phrase prefixes of analysed tokens, close to this). A hit
whose only match is elsewhere in its facets is left out, as OpenSearch would find nothing to match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from upriver.http import routes
from upriver.http.api import Answer
from upriver.http.marquez.params import MarquezValidationError
from upriver.http.marquez.shapes import INPUT_FACETS, OUTPUT_FACETS, UPRIVER_KEYS
from upriver.http.spec import Param, Query
from upriver.readside.dataset_search import DocumentRow
from upriver.readside.lineage import LineageReader

HITS = 10  # OpenSearch's default size
Q = Param("q", required=True, example="orders", description="a part of a name, field, SQL text ...")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parsed(text: str) -> dict[str, Any]:
    try:
        return _object(json.loads(text)) if text else {}
    except (ValueError, RecursionError):
        return {}


def _values(doc: Any, path: list[str], prefix: str) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string (or number) at `path` in `doc`, through lists; `*` is any key."""
    if isinstance(doc, list):
        for item in doc:
            yield from _values(item, path, prefix)
        return
    if not path:
        if isinstance(doc, (str, int, float)) and not isinstance(doc, bool):
            yield prefix, str(doc)
        return
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        keys = sorted(doc) if head == "*" else [head] if head in doc else []
        for key in keys:
            yield from _values(doc[key], rest, f"{prefix}.{key}" if prefix else key)


def highlights(doc: dict[str, Any], fields: tuple[str, ...], query: str) -> dict[str, list[str]]:
    """field path -> its values containing `query`, each occurrence marked `<em>…</em>`."""
    pattern = re.compile(re.escape(query), re.IGNORECASE)
    out: dict[str, list[str]] = {}
    for name in fields:
        for path, text in _values(doc, name.split("."), ""):
            if pattern.search(text):
                out.setdefault(path, []).append(pattern.sub(lambda m: f"<em>{m.group(0)}</em>", text))
    return out


DATASET_FIELDS = (
    "run_id", "name", "namespace", "facets.schema.fields.name", "facets.schema.fields.type",
    "facets.columnLineage.fields.*.inputFields.name", "facets.columnLineage.fields.*.inputFields.namespace",
    "facets.columnLineage.fields.*.inputFields.field", "facets.columnLineage.fields.*.transformationDescription",
    "facets.columnLineage.fields.*.transformationType",
)  # fmt: skip
JOB_FIELDS = (
    "facets.sql.query", "facets.sourceCode.sourceCode", "facets.sourceCode.language",
    "runFacets.processing_engine.name", "run_id", "name", "namespace", "type",
)  # fmt: skip


def dataset_hit(row: DocumentRow) -> dict[str, Any]:
    """The document Marquez indexes for a dataset: its last event's run, type, name, namespace and facets."""
    facets = {k: v for k, v in _parsed(row.facets).items() if not k.startswith("upriver")}
    run_context = OUTPUT_FACETS if row.output else INPUT_FACETS
    side = {k: facets.pop(k) for k in run_context if k in facets}
    event = str(_object(_parsed(row.run_facets).get("openlineage")).get("eventType") or "")
    return {"run_id": row.run_id, "eventType": event, "name": row.name,
            "inputFacets": {} if row.output else side, "outputFacets": side if row.output else {},
            "namespace": row.namespace, "facets": facets}  # fmt: skip


def job_hit(row: DocumentRow) -> dict[str, Any]:
    """The document Marquez indexes for a job: its last run, the event type, job and run facets."""
    stored = _parsed(row.run_facets)
    job_facets = _object(stored.get("jobFacets"))
    processing = str(_object(job_facets.get("jobType")).get("processingType") or "")
    return {"run_id": row.run_id, "eventType": str(_object(stored.get("openlineage")).get("eventType") or ""),
            "name": row.name, "type": "STREAM" if processing.upper() == "STREAMING" else "BATCH",
            "namespace": row.namespace, "facets": job_facets,
            "runFacets": {k: v for k, v in stored.items() if k not in UPRIVER_KEYS}}  # fmt: skip


def _query(q: Query) -> str:
    text = q.text("q")
    if text is None or not text.strip():
        raise MarquezValidationError(400, "query param q must not be blank")
    return text


def _answer(docs: list[dict[str, Any]], fields: tuple[str, ...], query: str) -> dict[str, Any]:
    hits: list[dict[str, Any]] = []
    marked: list[dict[str, list[str]]] = []
    for doc in docs:
        found = highlights(doc, fields, query)
        if found and len(hits) < HITS:
            hits.append(doc)
            marked.append(found)
    return {"hits": hits, "highlights": marked}


@routes.get("/api/v2beta/search/datasets", "Marquez (v2beta): datasets whose names, fields or column lineage "
            "match q, with highlights", Q, answer="hits and highlights", marquez=True)  # fmt: skip
def marquez_search_datasets(reader: LineageReader, q: Query) -> Answer:
    text = _query(q)
    rows = reader.catalog_datasets.search.dataset_documents(text, reader.catalog_datasets.moved(), 5 * HITS)
    return _answer([dataset_hit(r) for r in rows], DATASET_FIELDS, text)


@routes.get("/api/v2beta/search/jobs", "Marquez (v2beta): jobs whose names, SQL, source code or engine match q, "
            "with highlights", Q, answer="hits and highlights", marquez=True)  # fmt: skip
def marquez_search_jobs(reader: LineageReader, q: Query) -> Answer:
    text = _query(q)
    rows = reader.catalog_datasets.search.job_documents(text, 5 * HITS)
    return _answer([job_hit(r) for r in rows], JOB_FIELDS, text)
