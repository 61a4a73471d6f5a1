"""Marquez's dataset and source routes (DatasetResource, SourceResource): its paths, paging (limit 100, offset
0), `totalCount`s, sort orders (datasets by name, versions newest first, sources by name) and 404/400 bodies.
Rows: upriver/readside/datasets.py and dataset_search.py (`reader.catalog_datasets`); shapes:
upriver/http/marquez/dataset_shapes.py. A dataset name holding `/` is sent percent-encoded (`%2F`). A dataset
is listed, and answers, under each of its names (the name sent and each symlink's), echoing the name asked.
"""

from __future__ import annotations

from upriver.http import routes
from upriver.http.api import Answer, MarquezError
from upriver.http.marquez import dataset_shapes as shapes
from upriver.http.marquez.params import LIMIT, OFFSET, page
from upriver.http.marquez.shapes import dataset_version_id, namespace_missing
from upriver.http.spec import Query
from upriver.readside.lineage import LineageReader

DATASETS = "/api/v1/namespaces/{namespace}/datasets"


@routes.get(DATASETS, "Marquez: a namespace's datasets (each of their names there), by name", LIMIT, OFFSET,
            answer="Marquez's DatasetList (datasets, totalCount)", marquez=True)  # fmt: skip
def marquez_datasets(reader: LineageReader, q: Query) -> Answer:
    namespace = q.segment("namespace")
    limit, offset = page(q)
    total, found = reader.catalog_datasets.page(namespace, limit, offset)
    if not total and reader.catalog_jobs.namespace(namespace) is None:
        raise namespace_missing(namespace)
    # tags as the dataset's own page shows them (its group's), looked up for the whole page at once (three queries)
    tags = reader.tags.datasets_tags([ds.key for ds in found]) if found else {}
    return {"datasets": [shapes.dataset_doc(ds, *tags[ds.key]) for ds in found], "totalCount": total}


@routes.get(DATASETS + "/{dataset}", "Marquez: one dataset (by any name it was sent under)",
            answer="Marquez's Dataset", marquez=True)  # fmt: skip
def marquez_dataset(reader: LineageReader, q: Query) -> Answer:
    return shapes.dataset_json(reader, q.segment("namespace"), q.segment("dataset"))


@routes.get(DATASETS + "/{dataset}/versions", "Marquez: a dataset's versions, newest first", LIMIT, OFFSET,
            answer="Marquez's DatasetVersionList (versions, totalCount)", marquez=True)  # fmt: skip
def marquez_dataset_versions(reader: LineageReader, q: Query) -> Answer:
    ds = shapes.find_dataset(reader, q.segment("namespace"), q.segment("dataset"))
    limit, offset = page(q)
    total, found = reader.catalog_datasets.versions(ds, limit, offset)
    tags, field_tags = shapes.tags_of(reader, ds)
    return {"versions": [shapes.version_doc(ds, v, tags, field_tags) for v in found], "totalCount": total}


@routes.get(DATASETS + "/{dataset}/versions/{version}", "Marquez: one version of a dataset",
            answer="Marquez's DatasetVersion", marquez=True)  # fmt: skip
def marquez_dataset_version(reader: LineageReader, q: Query) -> Answer:
    ds = shapes.find_dataset(reader, q.segment("namespace"), q.segment("dataset"))
    asked = q.segment("version")
    keys = reader.catalog_datasets.version_keys(ds)
    index = next((i for i, (run, v) in enumerate(keys) if dataset_version_id(*ds.key, v, run) == asked), None)
    found = None if index is None else reader.catalog_datasets.version(ds, index)
    if found is None:
        raise MarquezError(404, f"Dataset version '{asked}' not found.")
    tags, field_tags = shapes.tags_of(reader, ds)
    return shapes.version_doc(ds, found, tags, field_tags)


@routes.get("/api/v1/sources", "Marquez: the sources (dataSource facets), by name", LIMIT, OFFSET,
            answer="Marquez's SourceList", marquez=True)  # fmt: skip
def marquez_sources(reader: LineageReader, q: Query) -> Answer:
    limit, offset = page(q)
    return {"sources": [shapes.source_doc(s) for s in reader.catalog_datasets.search.sources(limit, offset)]}


@routes.get("/api/v1/sources/{source}", "Marquez: one source", answer="Marquez's Source", marquez=True)
def marquez_source(reader: LineageReader, q: Query) -> Answer:
    name = q.segment("source")
    found = reader.catalog_datasets.search.sources(1, 0, name)
    if not found:
        raise MarquezError(404, f"Source '{name}' not found.")
    return shapes.source_doc(found[0])
