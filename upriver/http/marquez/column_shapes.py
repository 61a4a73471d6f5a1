"""Marquez's DATASET_FIELD vertices of a column-lineage graph (ColumnLineageService.toLineage), built from
upriver/readside/column_graph.py's rows (one per (input field, output field) pair: its newest run's).

Per output field one vertex whose data is ColumnLineageNodeData (db/models/ColumnLineageNodeData.java, every key,
nulls written): namespace, dataset, datasetVersion (the version the pair's run wrote: shapes.py's
`dataset_version_id`, as the dataset versions routes name it), field, fieldType (the field's type in that run's
schema facet), transformationDescription and transformationType (those of its first input field), inputFields (one
InputFieldNodeData per input: the version of the input the run read, and the transformationDescription and
transformationType of the output column in the run's columnLineage facet: Marquez reads those output-level
properties, not the inputFields' `transformations`), sorted as ARRAY_AGG(DISTINCT ARRAY[namespace, dataset,
version, field, description, type]) sorts them (code point order, nulls last). An input field that is no output of
the graph is a vertex with `fieldType` "", no transformation and no inputFields
(ColumnLineageNodeData(InputFieldNodeData)).
Both ends carry each edge with themselves as the origin: an output's inEdges {origin: output, destination: input},
an input's outEdges {origin: input, destination: output}. Vertices are sorted by id, edges by (origin,
destination), as Java compares strings. With a versioned nodeId every id ends in `#<its dataset version>` and an
output field is one vertex per version; without, a field is one vertex (Marquez keeps one of its per-version rows at
random; here their union, with the newest run's version and type).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas import identity
from upriver.http.marquez.shapes import dataset_version_id
from upriver.readside.aliases import Aliases
from upriver.readside.column_graph import ColumnRow
from upriver.readside.jobs import Artifact, RunRecord

if TYPE_CHECKING:
    from upriver.readside.lineage import LineageReader

Key = tuple[str, str]  # a Marquez dataset: (namespace, name)


@dataclass(frozen=True)
class Link:
    """A pair as drawn: both ends' vertex ids, and what the output's vertex data says of the input."""

    row: ColumnRow
    src_id: str
    dst_id: str
    dst_key: Key  # the output's dataset as drawn
    dst_version: str
    field_type: str | None
    input_field: dict[str, Any]


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parsed(facets: str) -> dict[str, Any]:
    try:
        return _object(json.loads(facets)) if facets else {}
    except (ValueError, RecursionError):
        return {}


def schema_types(facets: Mapping[str, Any]) -> dict[str, str | None]:
    """field name -> type of a dataset's schema facet (its top-level fields)."""
    fields = _object(facets.get("schema")).get("fields")
    out: dict[str, str | None] = {}
    for f in fields if isinstance(fields, list) else ():
        if isinstance(f, dict) and isinstance(f.get("name"), str):
            out.setdefault(f["name"], _text(f.get("type")))
    return out


def lineage_of(facets: Mapping[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    """output field -> (transformationDescription, transformationType) of a columnLineage facet's fields."""
    fields = _object(_object(facets.get("columnLineage")).get("fields"))
    return {
        name: (_text(spec.get("transformationDescription")), _text(spec.get("transformationType")))
        for name, spec in fields.items()
        if isinstance(spec, dict)
    }


def java(text: str) -> bytes:
    """A sort key ordering strings as Java's String.compareTo does (UTF-16 code units)."""
    return text.encode("utf-16-be", "surrogatepass")


def _key(node: str) -> Key:
    ref = identity.parse(node)
    return ref.namespace, ref.name


def _by_key(artifacts: Iterable[Artifact]) -> dict[Key, Artifact]:
    out: dict[Key, Artifact] = {}
    for a in artifacts:  # by the group's canonical node (resolved artifacts carry it; their names are as sent)
        out.setdefault(_key(a.node_id) if identity.is_id(a.node_id) else (a.namespace, a.name), a)
    return out


def _field_id(key: Key, field: str, version: str | None) -> str:
    base = f"datasetField:{key[0]}:{key[1]}:{field}"
    return f"{base}#{version}" if version else base


def links(reader: LineageReader, rows: list[ColumnRow], versioned: bool, aliases: Aliases) -> list[Link]:
    """The rows with their versions, types and transformations read from their runs (named and versioned as the
    runs routes answer them: upriver/readside/dataset_versions.py); a dataset known under several names is drawn
    under the one it was first sent as (Marquez's dataset name), its versions are its group's."""
    nodes = {identity.node_of(n) for r in rows for n in (r.src, r.dst)}
    named = reader.catalog_datasets.sent_names(sorted(nodes), aliases)
    found = reader.jobgraph.runs(sorted({r.run_id for r in rows}))
    runs: dict[str, RunRecord] = {r.run_id: r for r in reader.catalog_datasets.resolve_runs(list(found.values()))}
    facets: dict[tuple[str, Key], dict[str, Any]] = {}
    out = []
    for row in rows:
        src, dst = _key(identity.node_of(row.src)), _key(identity.node_of(row.dst))
        src_field, dst_field = identity.field_of(row.src) or "", identity.field_of(row.dst) or ""
        run = runs.get(row.run_id)
        wrote = _by_key(run.outputs).get(dst) if run else None
        read = _by_key(run.inputs).get(src) if run else None
        out_version = dataset_version_id(*dst, wrote.version if wrote else row.dst_version, row.run_id)
        in_version = dataset_version_id(*src, *(read.read or (read.version, ""))) if read else None
        doc = facets.setdefault((row.run_id, dst), parsed(wrote.facets) if wrote else {})
        description, ttype = lineage_of(doc).get(dst_field, (None, None))
        src_as, dst_as = named.get(identity.node_of(row.src), src), named.get(identity.node_of(row.dst), dst)
        input_field = {"namespace": src_as[0], "dataset": src_as[1], "datasetVersion": in_version,
                       "field": src_field, "transformationDescription": description,
                       "transformationType": ttype}  # fmt: skip
        out.append(Link(row, _field_id(src_as, src_field, in_version if versioned else None),
                        _field_id(dst_as, dst_field, out_version if versioned else None), dst_as, out_version,
                        schema_types(doc).get(dst_field), input_field))  # fmt: skip
    return out


def _input_order(f: Mapping[str, Any]) -> tuple[Any, ...]:
    parts = (f["namespace"], f["dataset"], f["datasetVersion"], f["field"], f["transformationDescription"],
             f["transformationType"])  # fmt: skip
    return tuple((p is None, p or "") for p in parts)


def vertices(reader: LineageReader, rows: list[ColumnRow], versioned: bool, aliases: Aliases
             ) -> list[dict[str, Any]]:  # fmt: skip
    """The graph's vertices in Marquez's order."""
    drawn = links(reader, rows, versioned, aliases)
    outputs: dict[str, list[Link]] = {}
    for link in drawn:
        outputs.setdefault(link.dst_id, []).append(link)
    data: dict[str, dict[str, Any]] = {}
    for vid, group in outputs.items():
        newest = max(group, key=lambda k: (k.row.seen_at, k.row.run_id))
        field = identity.field_of(newest.row.dst)
        inputs = sorted({json.dumps(k.input_field, sort_keys=True): k.input_field for k in group}.values(),
                        key=_input_order)  # fmt: skip
        first = inputs[0] if inputs else {}
        data[vid] = {"namespace": newest.dst_key[0], "dataset": newest.dst_key[1],
                     "datasetVersion": newest.dst_version, "field": field, "fieldType": newest.field_type,
                     "transformationDescription": first.get("transformationDescription"),
                     "transformationType": first.get("transformationType"), "inputFields": inputs}  # fmt: skip
    for link in sorted(drawn, key=lambda k: (-k.row.seen_at, k.row.run_id)):  # the newest row names an input's version
        f = link.input_field
        data.setdefault(link.src_id, {"namespace": f["namespace"], "dataset": f["dataset"],
                                      "datasetVersion": f["datasetVersion"], "field": f["field"], "fieldType": "",
                                      "transformationDescription": None, "transformationType": None,
                                      "inputFields": []})  # fmt: skip
    ins: dict[str, set[str]] = {}
    outs: dict[str, set[str]] = {}
    for link in drawn:
        ins.setdefault(link.dst_id, set()).add(link.src_id)
        outs.setdefault(link.src_id, set()).add(link.dst_id)
    return [
        {"id": vid, "type": "DATASET_FIELD", "data": data[vid],
         "inEdges": [{"origin": vid, "destination": d} for d in sorted(ins.get(vid, ()), key=java)],
         "outEdges": [{"origin": vid, "destination": d} for d in sorted(outs.get(vid, ()), key=java)]}
        for vid in sorted(data, key=java)
    ]  # fmt: skip
