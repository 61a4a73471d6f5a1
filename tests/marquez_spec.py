"""Marquez's OpenAPI document (spec/openapi.yml of a Marquez checkout, unchanged) as a validator of answers:
`Contract().errors(path, method, status, body)` lists every way `body` breaks the response schema that
the document gives that path/method/status, its `$ref`s resolved through a `referencing` registry over
the whole document and checked by openapi-schema-validator's OAS30Validator with format checks.

The document cannot validate real Marquez answers as written. Each workaround below is applied in memory
(the file stays byte-identical) and is justified by Marquez's source at the same commit:

 1. Nulls. Marquez serialises answers with Dropwizard's ObjectMapper (MarquezApp.java: only
    WRITE_DATES_AS_TIMESTAMPS is changed, inclusion stays ALWAYS), so every @Nullable field is written as
    `null`, and the document's own examples show `latestRun: null`, `nominalStartTime: null`,
    `lastModifiedAt: null`; yet no schema says `nullable`. Every property that is not `required` may be
    null here, and so may DatasetVersion.description (required, but @Nullable in DatasetVersion.java).
 2. SearchResult.name and .updatedAt have an empty `type:` (YAML null, which no validator takes); both are
    strings in api/models/SearchResult.java.
 3. DatasetVersion.tags says `type: string`; DatasetVersion.java holds ImmutableSet<TagName>: an array of
    strings, as in Dataset.
 4. Run is `anyOf: [IncompleteRun, {jobVersion, ...}]`, which every object satisfies through its second
    branch (no constraint binds); Run.java has all of those fields at once, so it is `allOf` here.
 5. GraphNode.data is a `oneOf` Dataset/Job with a discriminator on `type`; neither schema closes its
    properties, so any data matches both and `oneOf` always fails, and openapi-schema-validator does not
    apply a discriminator. The node's own `type` picks the schema here (the mapping's intent): DATASET ->
    Dataset, JOB -> Job. NodeType lists JOB and DATASET only; NodeType.java also has DATASET_FIELD (the
    column-lineage nodes) and RUN, whose data is ColumnLineageNodeData (db/models/ColumnLineageNodeData.java,
    schema written below).
 6. FacetsResult.facets refers to one CustomFacet; RunFacets.java (the answer of /jobs/runs/{id}/facets for
    type=run and type=job) holds a map of facet name -> facet, i.e. the document's RunFacets.
 7. SourceList, DatasetList, DatasetVersionList, JobVersionList and TagList give `items` without
    `type: array`, so a non-array would pass; `type: array` is added.
 8. PUT /tags/{tag} is documented to answer a TagList; TagResource.create answers the upserted Tag.
 9. Routes the document does not list, their answers written from the source: GET /jobs (JobResource.list:
    the same ResultsPage "jobs" as JobList), GET /stats/lineage-events (a list of db/models/LineageMetric)
    and /stats/jobs|datasets|sources (a list of db/models/IntervalMetric; Instants are ISO strings),
    DELETE dataset and field tags (Dataset, DatasetResource), POST/DELETE job tags (Job, JobResource).
10. InputDatasetVersion.facets and OutputDatasetVersion.facets (in a Run) give `additionalProperties:
    type: string`; common/models/InputDatasetVersion.java and OutputDatasetVersion.java hold
    ImmutableMap<String, Object>, the input/output facets as sent: a map of CustomFacet here.
11. Dataset.fields[].type and DatasetVersion.fields[].type are `required` strings; common/models/Field.java
    has `@Nullable String type` (a schema facet field without a type is answered with `"type": null`).
12. Errors: the document declares no 4xx answer. Marquez's are Dropwizard's ErrorMessage,
    `{"code": <status>, "message": "..."}` (`details` only when set), and for a 400 of bean validation
    (@Min, @NotNull, @NotBlank on a parameter) Dropwizard's ValidationErrorMessage `{"errors": ["..."]}`:
    ErrorMessage below for every 4xx, or ValidationErrorMessage for a 400.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# The document is read from a Marquez checkout at test time, never copied into this repository (what `fetch`
# brings is not committed): MARQUEZ_SPEC names the file, or MARQUEZ_REPO a clone or bare repository of
# https://github.com/MarquezProject/marquez read at MARQUEZ_REF (default: the commit the workarounds below were
# written against). The Makefile passes MARQUEZ_REPO; without one, validating tests are skipped, saying why.
MARQUEZ_REF = "a89b89cad27f87c90dd964c40dae8dfb3f64031f"  # 0.51.2-SNAPSHOT, 2025-03-27


def spec_text() -> str | None:
    """The document's text, or None when no Marquez checkout is given (or it lacks the commit)."""
    named = os.environ.get("MARQUEZ_SPEC")
    if named:
        return Path(named).read_text()
    repo = os.environ.get("MARQUEZ_REPO")
    if not repo:
        return None
    ref = os.environ.get("MARQUEZ_REF", MARQUEZ_REF)
    found = subprocess.run(["git", "-C", repo, "show", f"{ref}:spec/openapi.yml"], capture_output=True, text=True)
    return found.stdout if found.returncode == 0 else None


NO_SPEC = (
    "Marquez's spec/openapi.yml is not here: set MARQUEZ_REPO to a clone of MarquezProject/marquez (holding "
    f"commit {MARQUEZ_REF[:9]}) or MARQUEZ_SPEC to the file (docs/marquez.md)"
)
BASE = "urn:upriver:marquez-openapi"
NULL = {"enum": [None]}

TIME = {"type": "string", "format": "date-time"}
COUNT = {"type": "integer"}
EXTRA_SCHEMAS: dict[str, Any] = {
    "ErrorMessage": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}, "details": {"type": "string"}},
    },
    "ValidationErrorMessage": {
        "type": "object",
        "required": ["errors"],
        "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
    },
    "BadRequest": {
        "anyOf": [
            {"$ref": "#/components/schemas/ErrorMessage"},
            {"$ref": "#/components/schemas/ValidationErrorMessage"},
        ]
    },
    "LineageMetricList": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["startInterval", "endInterval", "fail", "start", "complete", "abort"],
            "properties": {
                "startInterval": TIME,
                "endInterval": TIME,
                "fail": COUNT,
                "start": COUNT,
                "complete": COUNT,
                "abort": COUNT,
            },
        },
    },
    "IntervalMetricList": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["startInterval", "endInterval", "count"],
            "properties": {"startInterval": TIME, "endInterval": TIME, "count": COUNT},
        },
    },
    "InputFieldNodeData": {
        "type": "object",
        "required": ["namespace", "dataset", "field"],
        "properties": {
            "namespace": {"type": "string"},
            "dataset": {"type": "string"},
            "datasetVersion": {"type": "string", "format": "uuid"},
            "field": {"type": "string"},
            "transformationDescription": {"type": "string"},
            "transformationType": {"type": "string"},
        },
    },
    "ColumnLineageNodeData": {
        "type": "object",
        "required": ["namespace", "dataset", "field", "inputFields"],
        "properties": {
            "namespace": {"type": "string"},
            "dataset": {"type": "string"},
            "datasetVersion": {"type": "string", "format": "uuid"},
            "field": {"type": "string"},
            "fieldType": {"type": "string"},
            "transformationDescription": {"type": "string"},
            "transformationType": {"type": "string"},
            "inputFields": {"type": "array", "items": {"$ref": "#/components/schemas/InputFieldNodeData"}},
        },
    },
}
NODE_DATA = {"DATASET": "Dataset", "JOB": "Job", "DATASET_FIELD": "ColumnLineageNodeData"}


def _answer(schema: str) -> dict[str, Any]:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema}}}}}


EXTRA_PATHS = {
    ("/jobs", "get"): "#/components/schemas/JobList",
    ("/stats/lineage-events", "get"): "#/components/schemas/LineageMetricList",
    ("/stats/jobs", "get"): "#/components/schemas/IntervalMetricList",
    ("/stats/datasets", "get"): "#/components/schemas/IntervalMetricList",
    ("/stats/sources", "get"): "#/components/schemas/IntervalMetricList",
    ("/namespaces/{namespace}/datasets/{dataset}/tags/{tag}", "delete"): "#/components/schemas/Dataset",
    ("/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}", "delete"): "#/components/schemas/Dataset",
    ("/namespaces/{namespace}/jobs/{job}/tags/{tag}", "post"): "#/components/schemas/Job",
    ("/namespaces/{namespace}/jobs/{job}/tags/{tag}", "delete"): "#/components/schemas/Job",
    ("/tags/{tag}", "put"): "#/components/schemas/Tag",
}


def _nullable_optionals(node: Any) -> None:
    """Workaround 1: every property not `required` also takes null (recursively)."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            required = set(node.get("required") or [])
            for name, sub in list(props.items()):
                _nullable_optionals(sub)
                if name not in required:
                    props[name] = {"anyOf": [sub, NULL]}
        for key, sub in node.items():
            if key != "properties":
                _nullable_optionals(sub)
    elif isinstance(node, list):
        for sub in node:
            _nullable_optionals(sub)


def patched(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with workarounds 1-12 applied."""
    doc = copy.deepcopy(doc)
    schemas = doc["components"]["schemas"]
    schemas.update(copy.deepcopy(EXTRA_SCHEMAS))
    for name in ("name", "updatedAt"):  # 2
        schemas["SearchResult"]["properties"][name]["type"] = "string"
    schemas["DatasetVersion"]["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}  # 3
    schemas["Run"]["allOf"] = schemas["Run"].pop("anyOf")  # 4
    schemas["GraphNode"]["properties"]["data"] = {"type": "object"}  # 5: checked per node type
    schemas["NodeType"]["enum"] = ["JOB", "DATASET", "DATASET_FIELD", "RUN"]
    schemas["FacetsResult"]["properties"]["facets"] = {"$ref": "#/components/schemas/RunFacets"}  # 6
    for name, key in (
        ("SourceList", "sources"),
        ("DatasetList", "datasets"),
        ("DatasetVersionList", "versions"),
        ("JobVersionList", "versions"),
        ("TagList", "tags"),
    ):
        schemas[name]["properties"][key]["type"] = "array"  # 7
    for name in ("InputDatasetVersion", "OutputDatasetVersion"):  # 10
        schemas[name]["properties"]["facets"]["additionalProperties"] = {"$ref": "#/components/schemas/CustomFacet"}
    for (path, method), ref in EXTRA_PATHS.items():  # 8, 9
        doc["paths"].setdefault(path, {})[method] = {"responses": _answer(ref)}
    for item in doc["paths"].values():  # status keys as strings (the document mixes 200 and '200')
        for op in item.values():
            if isinstance(op, dict) and "responses" in op:
                op["responses"] = {str(k): v for k, v in op["responses"].items()}
    _nullable_optionals(schemas)  # 1
    schemas["DatasetVersion"]["properties"]["description"] = {"anyOf": [{"type": "string"}, NULL]}
    for name in ("Dataset", "DatasetVersion"):  # 11 (after 1: `type` is required, so it was left alone)
        field = schemas[name]["properties"]["fields"]["anyOf"][0]["items"]["properties"]
        field["type"] = {"anyOf": [{"type": "string"}, NULL]}
    return doc


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The innermost errors under an anyOf/allOf, without the null branch's "not one of [None]"."""
    if not error.context:
        yield error
        return
    for sub in error.context:
        if not (sub.validator == "enum" and sub.validator_value == [None]):
            yield from _leaves(sub)


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else f"{text[: limit // 2]} ... {text[-limit // 2 :]}"


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    """Validates answers against the patched document, read on first use; a test that validates is skipped
    (saying why) when no Marquez checkout is given."""

    def __init__(self) -> None:
        self._doc: dict[str, Any] | None = None
        self._registry: Registry[Any] | None = None
        self.checker = FormatChecker()

    def _load(self) -> None:
        text = spec_text()
        if text is None:
            pytest.skip(NO_SPEC)
        self._doc = patched(yaml.safe_load(text))
        self._registry = Registry().with_resource(BASE, Resource.from_contents(self._doc, default_specification=DRAFT4))

    @property
    def doc(self) -> dict[str, Any]:
        if self._doc is None:
            self._load()
        assert self._doc is not None
        return self._doc

    @property
    def registry(self) -> Registry[Any]:
        if self._registry is None:
            self._load()
        assert self._registry is not None
        return self._registry

    def schema_errors(self, ref: str, instance: Any) -> list[str]:
        validator = OAS30Validator({"$ref": f"{BASE}{ref}"}, registry=self.registry, format_checker=self.checker)
        found = [
            f"{e.json_path}: {_clip(e.message)}"
            for top in validator.iter_errors(instance)
            for e in _leaves(top)
            if e.message != "None for not nullable"  # always beside "None is not of type ..."
        ]
        return list(dict.fromkeys(found))

    def response_ref(self, path: str, method: str, status: int) -> str:
        if status == 400:
            return "#/components/schemas/BadRequest"  # 12
        if 400 <= status < 500:
            return "#/components/schemas/ErrorMessage"
        op = self.doc["paths"][path][method.lower()]
        answer = op["responses"][str(status)]
        assert "content" in answer, f"{method} {path} {status}: the document gives no body"
        return "#/" + _pointer(
            "paths", path, method.lower(), "responses", str(status), "content", "application/json", "schema"
        )

    def errors(self, path: str, method: str, status: int, body: Any) -> list[str]:
        """Every schema violation of `body` as the answer of `method path` with `status`."""
        if path not in self.doc["paths"] and not 400 <= status < 500:
            return [f"{method} {path} is in neither Marquez's document nor this module's additions"]
        errs = self.schema_errors(self.response_ref(path, method, status), body)
        if path in ("/lineage", "/column-lineage") and status == 200 and isinstance(body, dict):
            for i, node in enumerate(body.get("graph") or []):  # 5
                kind = NODE_DATA.get(node.get("type")) if isinstance(node, dict) else None
                if kind and node.get("data") is not None:
                    ref = f"#/components/schemas/{kind}"
                    errs += [f"$.graph[{i}].data ({node['type']}) {e}" for e in self.schema_errors(ref, node["data"])]
        return errs
