"""Marquez's tag API: tag and untag datasets, fields and jobs, define a tag, list the tags (docs/marquez.md, Tags).

As Marquez answers them (its DatasetResource, JobResource and TagResource): 200 with the Dataset (the
dataset and field routes), the Job (the job routes) or the Tag (`PUT /tags/{tag}`); 404 with Marquez's
messages when the namespace, dataset, field or job does not exist, checked in Marquez's order. Tagging with
an undefined tag defines it (Marquez upserts it); a field's tag is upper-cased, as Marquez does; removing a
tag that is not there answers 200 all the same.

Every write is a TagChange sent to the tags topic through the server's `Writes` (upriver/http/tags.py) and
answered once Kafka acknowledged it; the answer is composed from the stored state plus the acknowledged
change (the reader merges it in until the sink loaded it: upriver/readside/tags.py).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from upriver.http import routes
from upriver.http.api import Answer, MarquezError
from upriver.http.marquez import dataset_shapes, params, shapes
from upriver.http.spec import Query, Reply, Writes
from upriver.readside.datasets import CatalogDataset
from upriver.readside.lineage import LineageReader

WRITE_ERRORS = (400, 401, 404, 503)
BODY_LIMIT = 64 * 1024  # these routes take no body (PUT /tags: a description); one is read and ignored
DATASET_TAG = "/api/v1/namespaces/{namespace}/datasets/{dataset}/tags/{tag}"
FIELD_TAG = "/api/v1/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}"
JOB_TAG = "/api/v1/namespaces/{namespace}/jobs/{job}/tags/{tag}"
DATASET = Reply(200, "the dataset, with its tags (Marquez's Dataset)")
JOB = Reply(200, "the job, with its tags (Marquez's Job)")
TAG_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"}}}
DESCRIPTION = {"type": "object", "properties": {"description": {"type": "string", "nullable": True}}}


# ---- the checks, in Marquez's order (BaseResource.throwIfNotExists) ---------------------------------


def _tag(q: Query, upper: bool = False) -> str:
    tag = q.segment("tag")
    if not tag.strip():  # TagName refuses a blank name; Jersey answers a path parameter it cannot build 404
        raise MarquezError(404, "HTTP 404 Not Found")
    return tag.upper() if upper else tag


def _dataset(reader: LineageReader, q: Query) -> CatalogDataset:
    """The dataset (by any name it was sent under), or Marquez's 404 as `GET` of the dataset answers it."""
    return dataset_shapes.find_dataset(reader, q.segment("namespace"), q.segment("dataset"))


def _field(reader: LineageReader, q: Query) -> tuple[CatalogDataset, str]:
    """The dataset and one of the fields its Dataset answer lists, or Marquez's 404."""
    ds, field = _dataset(reader, q), q.segment("field")
    if field not in {f["name"] for f in dataset_shapes.fields_json(ds.facets, {})}:
        raise MarquezError(404, f"Field '{field}' not found for dataset '{q.segment('dataset')}'.")
    return ds, field


def _job(reader: LineageReader, q: Query) -> tuple[str, str]:
    """The job's (namespace, name); Marquez's 404 (of its namespace first) as `GET` of the job answers it."""
    namespace, name = q.segment("namespace"), q.segment("job")
    if reader.catalog_jobs.job(namespace, name) is None:
        raise shapes.job_missing(reader, namespace, name)
    return namespace, name


# ---- the change, published, then merged into the reader's answers ------------------------------------


def change(op: str, entity: str, namespace: str, name: str, field: str | None, tag: str, source: str,
           description: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A new TagChange (record form, schemas/tag_change.avsc), stamped now with a fresh change id."""
    return {"change_id": str(uuid.uuid4()), "op": op, "entity": entity, "namespace": namespace, "name": name,
            "field": field, "tag": tag, "description": description, "changed_at": int(time.time() * 1000),
            "source": source}  # fmt: skip


def _publish(reader: LineageReader, writes: Writes, made: dict[str, Any]) -> None:
    writes.tag_change(made)  # returns once Kafka acknowledged it
    reader.tags.acknowledged(made)


def _dataset_answer(reader: LineageReader, ds: CatalogDataset) -> dict[str, Any]:
    return dataset_shapes.dataset_doc(ds, *dataset_shapes.tags_of(reader, ds))


# ---- the routes -----------------------------------------------------------------------------------


@routes.write("POST", DATASET_TAG, "Tag a dataset", DATASET, limit=BODY_LIMIT, errors=WRITE_ERRORS, marquez=True)
def marquez_tag_dataset(reader: LineageReader, writes: Writes, q: Query, _body: bytes) -> tuple[int, Any]:
    ds = _dataset(reader, q)
    _publish(reader, writes, change("ADD", "DATASET", *ds.key, None, _tag(q), f"POST {DATASET_TAG}"))
    return 200, _dataset_answer(reader, ds)


@routes.write("DELETE", DATASET_TAG, "Remove a tag from a dataset", DATASET, limit=BODY_LIMIT,
              errors=WRITE_ERRORS, marquez=True)  # fmt: skip
def marquez_untag_dataset(reader: LineageReader, writes: Writes, q: Query, _body: bytes) -> tuple[int, Any]:
    ds = _dataset(reader, q)
    made = change("REMOVE", "DATASET", *ds.key, None, _tag(q), f"DELETE {DATASET_TAG}")
    _publish(reader, writes, made)
    return 200, _dataset_answer(reader, ds)


@routes.write("POST", FIELD_TAG, "Tag a field", DATASET, limit=BODY_LIMIT, errors=WRITE_ERRORS, marquez=True)
def marquez_tag_field(reader: LineageReader, writes: Writes, q: Query, _body: bytes) -> tuple[int, Any]:
    ds, field = _field(reader, q)
    made = change("ADD", "FIELD", *ds.key, field, _tag(q, upper=True), f"POST {FIELD_TAG}")
    _publish(reader, writes, made)
    return 200, _dataset_answer(reader, ds)


@routes.write("DELETE", FIELD_TAG, "Remove a tag from a field", DATASET, limit=BODY_LIMIT, errors=WRITE_ERRORS,
              marquez=True)  # fmt: skip
def marquez_untag_field(reader: LineageReader, writes: Writes, q: Query, _body: bytes) -> tuple[int, Any]:
    ds, field = _field(reader, q)
    made = change("REMOVE", "FIELD", *ds.key, field, _tag(q, upper=True), f"DELETE {FIELD_TAG}")
    _publish(reader, writes, made)
    return 200, _dataset_answer(reader, ds)


@routes.write("POST", JOB_TAG, "Tag a job", JOB, limit=BODY_LIMIT, errors=WRITE_ERRORS, marquez=True)
def marquez_tag_job(reader: LineageReader, writes: Writes, q: Query, _body: bytes) -> tuple[int, Any]:
    namespace, name = _job(reader, q)
    _publish(reader, writes, change("ADD", "JOB", namespace, name, None, _tag(q), f"POST {JOB_TAG}"))
    return 200, shapes.job_json(reader, namespace, name)


@routes.write("DELETE", JOB_TAG, "Remove a tag from a job", JOB, limit=BODY_LIMIT, errors=WRITE_ERRORS, marquez=True)
def marquez_untag_job(reader: LineageReader, writes: Writes, q: Query, _body: bytes) -> tuple[int, Any]:
    namespace, name = _job(reader, q)
    _publish(reader, writes, change("REMOVE", "JOB", namespace, name, None, _tag(q), f"DELETE {JOB_TAG}"))
    return 200, shapes.job_json(reader, namespace, name)


def _description(body: bytes) -> str | None:
    """The `description` of a `PUT /tags/{tag}` body (none, or absent/null: the tag keeps the one it has)."""
    if not body.strip():
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MarquezError(400, f"Unable to process JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MarquezError(400, 'Unable to process JSON: the body is an object {"description": ...}')
    text = doc.get("description")
    if text is not None and not isinstance(text, str):
        raise MarquezError(400, "Unable to process JSON: description must be a string")
    return text


@routes.write("PUT", "/api/v1/tags/{tag}", "Create a tag", Reply(200, "the tag (Marquez's Tag)", schema=TAG_SCHEMA),
              body=DESCRIPTION, limit=BODY_LIMIT, errors=WRITE_ERRORS, marquez=True)  # fmt: skip
def marquez_put_tag(reader: LineageReader, writes: Writes, q: Query, body: bytes) -> tuple[int, Any]:
    tag = _tag(q)
    _publish(reader, writes, change("DEFINE", "TAG", "", "", None, tag, "PUT /api/v1/tags/{tag}", _description(body)))
    return 200, reader.tags.tag(tag) or {"name": tag, "description": None}


@routes.get("/api/v1/tags", "List all tags", params.LIMIT, params.OFFSET,
            answer="Marquez's Tags: {tags: [{name, description}]}, by name", marquez=True)  # fmt: skip
def marquez_tags(reader: LineageReader, q: Query) -> Answer:
    limit, offset = params.page(q)
    return {"tags": reader.tags.defined()[offset : offset + limit]}
