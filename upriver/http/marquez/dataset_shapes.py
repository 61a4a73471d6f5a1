"""Marquez's JSON shapes of datasets, dataset versions, sources and search results, built from
upriver/readside/datasets.py's and dataset_search.py's records. Pure but for `dataset_json`'s lookups.

Field names, types and nulls are Marquez's (api/.../service/models/Dataset.java, DbTable.java,
DatasetVersion.java, Source.java, api/models/SearchResult.java, as its Jackson mapper writes them: every
field present, null when absent, times as upriver/http/marquez/shapes.py's `iso`). A dataset answers under
the name it was listed or asked by (`id`, `namespace`, `name`: datasets_view's row of that name), with its
group's content. Every dataset is a DB_TABLE (Marquez types every OpenLineage dataset so); its physical name
is the name a producer last sent it under (datasets.physical_name); `lastLifecycleState` is "" when no
lifecycleStateChange facet was sent (Marquez stores ""), and `deleted` is true when the last one was DROP.
Version ids are shapes.py's `dataset_version_id` of the group's key (one id per version whatever the name, as
Marquez's dataset_versions.uuid), so runs' dataset versions name them too; tags are the group's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from schemas import identity
from upriver.http.api import MarquezError
from upriver.http.marquez.column_shapes import lineage_of
from upriver.http.marquez.shapes import VERSIONS, dataset_version_id, iso, namespace_missing, run_json
from upriver.readside.dataset_search import SearchHitRow, SourceRow
from upriver.readside.datasets import CatalogDataset, DatasetVersionRow

if TYPE_CHECKING:
    from upriver.readside.lineage import LineageReader

DATASET_TYPE = "DB_TABLE"
SOURCE_TYPE = "POSTGRESQL"  # the type Marquez gives every source an OpenLineage event makes
_URI_UNSAFE = set(' "<>\\^`{|}')  # characters java.net.URI refuses (beside controls)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def facet_tags(facets: Mapping[str, Any]) -> dict[str, list[str]]:
    """field ("" for the dataset) -> tag names of an OpenLineage `tags` dataset facet (each entry's key), as
    upriver/readside/tags.py reads them: what `dataset_doc` shows when the tags were not looked up."""
    entries = _object(facets.get("tags")).get("tags")
    out: dict[str, set[str]] = {}
    for entry in entries if isinstance(entries, list) else ():
        key = entry.get("key") if isinstance(entry, dict) else None
        if isinstance(key, str) and key:
            found = entry.get("field")
            out.setdefault(found if isinstance(found, str) else "", set()).add(key)
    return {f: sorted(tags) for f, tags in out.items()}


def fields_json(facets: Mapping[str, Any], tags: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Marquez's Fields: the schema facet's top-level fields in order (name, type, tags, description)."""
    fields = _object(facets.get("schema")).get("fields")
    out = []
    for f in fields if isinstance(fields, list) else ():
        if isinstance(f, dict) and isinstance(f.get("name"), str):
            kind, text = f.get("type"), f.get("description")
            out.append({"name": f["name"], "type": kind if isinstance(kind, str) else None,
                        "tags": list(tags.get(f["name"], [])),
                        "description": text if isinstance(text, str) else None})  # fmt: skip
    return out


def lifecycle(facets: Mapping[str, Any]) -> str:
    state = _object(facets.get("lifecycleStateChange")).get("lifecycleStateChange")
    return state if isinstance(state, str) else ""


def description(facets: Mapping[str, Any]) -> str | None:
    text = _object(facets.get("documentation")).get("description")
    return text if isinstance(text, str) else None


def schema_version_id(fields: list[dict[str, Any]]) -> str:
    """A uuid of the fields' names and types (Marquez's dataset schema version)."""
    shape = [[f["name"], f["type"]] for f in fields]
    return str(uuid.uuid5(VERSIONS, json.dumps(["schema", shape], separators=(",", ":"), ensure_ascii=False)))


def column_lineage_json(ds: CatalogDataset) -> list[dict[str, Any]] | None:
    """Marquez's ColumnLineage of the dataset's fields (None when it has none, as Marquez leaves it): per
    output field its input fields, each with the output field's own transformationDescription and
    transformationType from the dataset's current columnLineage facet (OpenLineageDao.upsertColumnLineage
    stores those, not the input fields' `transformations`, as /column-lineage answers them too); null when
    the facet does not give them."""
    described = lineage_of(ds.facets)
    by_field: dict[str, list[dict[str, Any]]] = {}
    for src, column, _ttype, _subtype in ds.columns:
        ref = identity.parse(src)
        description, ttype = described.get(column, (None, None))
        by_field.setdefault(column, []).append(
            {
                "namespace": ref.namespace,
                "dataset": ref.name,
                "field": ref.field,
                "transformationDescription": description,
                "transformationType": ttype,
            }
        )
    out = []
    for column in sorted(by_field):
        inputs = by_field[column]
        out.append(
            {
                "name": column,
                "inputFields": inputs,
                "transformationDescription": inputs[0]["transformationDescription"],
                "transformationType": inputs[0]["transformationType"],
            }
        )
    return out or None


def dataset_doc(ds: CatalogDataset, tags: list[str] | None = None,
                field_tags: Mapping[str, list[str]] | None = None) -> dict[str, Any]:  # fmt: skip
    """Marquez's Dataset (a DbTable). `tags`/`field_tags` as upriver/readside/tags.py answers them; None:
    the current `tags` facet's."""
    from_facet = facet_tags(ds.facets)
    state = lifecycle(ds.facets)
    return {
        "id": {"namespace": ds.namespace, "name": ds.name},
        "type": DATASET_TYPE,
        "name": ds.name,
        "physicalName": ds.physical_name or ds.name,
        "createdAt": iso(ds.created_at),
        "updatedAt": iso(ds.updated_at),
        "namespace": ds.namespace,
        "sourceName": ds.source,
        "fields": fields_json(ds.facets, from_facet if field_tags is None else field_tags),
        "tags": from_facet.get("", []) if tags is None else list(tags),
        "lastModifiedAt": iso(ds.last_written),
        "lastLifecycleState": state,
        "description": description(ds.facets),
        "currentVersion": dataset_version_id(*ds.key, ds.current_version, ds.current_run),
        "columnLineage": column_lineage_json(ds),
        "facets": ds.facets,
        "deleted": state.upper() == "DROP",
    }


def find_dataset(reader: LineageReader, namespace: str, name: str) -> CatalogDataset:
    """The dataset, or Marquez's 404: of its namespace first when that is not there either."""
    found = reader.catalog_datasets.find(namespace, name)
    if found is None:
        if reader.catalog_jobs.namespace(namespace) is None:
            raise namespace_missing(namespace)
        raise MarquezError(404, f"Dataset '{name}' not found.")
    return found


def dataset_json(reader: LineageReader, namespace: str, name: str) -> dict[str, Any]:
    """Marquez's Dataset of one dataset with its current tags (GET /namespaces/{ns}/datasets/{ds}, and the
    tag writes answer it), or Marquez's 404."""
    ds = find_dataset(reader, namespace, name)
    return dataset_doc(ds, *tags_of(reader, ds))


def tags_of(reader: LineageReader, ds: CatalogDataset) -> tuple[list[str], dict[str, list[str]]]:
    """(the dataset's tags, its fields' tags) as upriver/readside/tags.py answers them (a list page's
    lookup, for one dataset): its group's, under whichever name it was asked."""
    return reader.tags.datasets_tags([ds.key])[ds.key]


def version_doc(ds: CatalogDataset, row: DatasetVersionRow, tags: list[str], field_tags: Mapping[str, list[str]]
                ) -> dict[str, Any]:  # fmt: skip
    """Marquez's DatasetVersion (a DbTableVersion). Its `id` also carries the version (the spec's
    DatasetVersionId requires it; Marquez writes the dataset's id)."""
    version = dataset_version_id(*ds.key, row.version, row.run_id)
    fields = fields_json(row.facets, field_tags)
    return {
        "id": {"namespace": ds.namespace, "name": ds.name, "version": version},
        "type": DATASET_TYPE,
        "name": ds.name,
        "physicalName": ds.physical_name or ds.name,
        "createdAt": iso(row.created_at),
        "version": version,
        "namespace": ds.namespace,
        "sourceName": ds.source,
        "fields": fields,
        "tags": list(tags),
        "lifecycleState": lifecycle(row.facets),
        "description": description(ds.facets),
        "currentSchemaVersion": schema_version_id(fields),
        "createdByRun": None if row.run is None else run_json(row.run),
        "facets": row.facets,
    }


def connection_url(uri: str) -> str | None:
    """The dataSource uri as Marquez stores it (java.net.URI's ASCII form: non-ASCII percent-encoded; a uri
    it cannot read even as `http://` + uri is null)."""
    if any(c in _URI_UNSAFE or ord(c) < 0x21 or ord(c) == 0x7F for c in uri) or uri.count("#") > 1:
        return None
    if _BAD_ESCAPE.search(uri):
        return None
    return quote(uri, safe="".join(chr(c) for c in range(0x21, 0x7F)))


def source_doc(row: SourceRow) -> dict[str, Any]:
    """Marquez's Source."""
    return {"type": SOURCE_TYPE, "name": row.name, "createdAt": iso(row.created_at), "updatedAt": iso(row.updated_at),
            "connectionUrl": connection_url(row.uri), "description": None}  # fmt: skip


def search_doc(hits: list[SearchHitRow]) -> dict[str, Any]:
    """Marquez's SearchResults: `totalCount` is the number of results answered (as Marquez counts it)."""
    results = [
        {"type": h.type, "name": h.name, "updatedAt": iso(h.updated_at), "namespace": h.namespace,
         "nodeId": identity.marquez_id(identity.NodeRef(identity.JOB if h.type == "JOB" else "DATASET",
                                                        h.namespace, h.name))}
        for h in hits
    ]  # fmt: skip
    return {"totalCount": len(results), "results": results}
