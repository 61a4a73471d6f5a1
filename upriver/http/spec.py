"""How a route is declared: its query parameters (`Param`), success answers (`Reply`) and the `Route` itself;
and `Query`, one request's query parameters read as its route declares them.

upriver/http/routes.py declares the routes with these, upriver/http/openapi.py documents them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from upriver.http.api import Answer, ApiError
from upriver.readside.lineage import LineageReader, parse_time

if TYPE_CHECKING:
    from upriver.http.ingest import OpenLineageIngest

Params = dict[str, list[str]]  # a parsed query string (urllib.parse.parse_qs: blank values dropped)
TRUE = ("1", "true", "yes")


@dataclass(frozen=True)
class Param:
    """A query parameter. `type`: string, integer, boolean, time (ISO 8601 or epoch ms) or words (a set of
    lower-cased words, comma-separated or repeated). `example` is named in the error when it is missing."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    default: str | int | bool | None = None
    minimum: int = 0
    maximum: int = 0
    enum: tuple[str, ...] = ()
    example: str = ""
    truthy: tuple[str, ...] = TRUE  # boolean: the (lower-cased) values that mean true


@dataclass(frozen=True)
class Reply:
    """A success answer of a route: status, description, media types (none: an empty body)."""

    status: int
    description: str
    media: tuple[str, ...] = ("application/json",)
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


class Writes(Protocol):
    """What a write route (the Marquez tag writes) publishes through: each change is an Upriver event sent to
    Kafka, acknowledged before the route answers (upriver/http/tags.py implements it)."""

    def tag_change(self, change: Mapping[str, Any]) -> None: ...


ReadHandler = Callable[[LineageReader, "Query"], Answer]
IngestHandler = Callable[["OpenLineageIngest", bytes], tuple[int, Any]]
WriteHandler = Callable[[LineageReader, Writes, "Query", bytes], tuple[int, Any]]


@dataclass(frozen=True, kw_only=True)
class Route:
    """One route. GET routes have `read`; POST routes of OpenLineage ingest `ingest`, `body` (the request
    body's JSON schema) and `body_limit` (the largest body taken, in bytes, before decompression too); other
    writes (POST, PUT, DELETE) `write`. A path may hold `{name}` segments, each matching one path segment
    (percent-decoded: `%2F` is a slash inside a name). `marquez`: errors answered in Marquez's shape."""

    method: str
    path: str
    summary: str
    name: str
    params: tuple[Param, ...] = ()
    replies: tuple[Reply, ...] = ()
    errors: tuple[int, ...] = ()
    read: ReadHandler | None = None
    ingest: IngestHandler | None = None
    write: WriteHandler | None = None
    body: Mapping[str, Any] | None = None
    body_limit: int = 0
    marquez: bool = False
    by_name: Mapping[str, Param] = field(init=False, repr=False, compare=False)
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})
        object.__setattr__(self, "segments", tuple(self.path.split("/")))

    @property
    def templated(self) -> bool:
        return "{" in self.path

    @property
    def path_names(self) -> tuple[str, ...]:
        return tuple(s[1:-1] for s in self.segments if s.startswith("{"))

    def match(self, raw_path: str) -> dict[str, str] | None:
        """The path parameters when `raw_path` (still percent-encoded) is this route's, else None."""
        parts = raw_path.split("/")
        if len(parts) != len(self.segments):
            return None
        found: dict[str, str] = {}
        for want, got in zip(self.segments, parts, strict=True):
            if want.startswith("{"):
                if not got:
                    return None
                found[want[1:-1]] = unquote(got)
            elif want != got:
                return None
        return found


class Query:
    """A request's query parameters, read as the route declares them; a bad value is an ApiError 400."""

    __slots__ = ("_declared", "_path", "_raw")

    def __init__(self, declared: Mapping[str, Param], raw: Params, path: Mapping[str, str] | None = None) -> None:
        self._declared = declared
        self._raw = raw
        self._path = path or {}

    def segment(self, name: str) -> str:
        """A path parameter (`{name}` in the route's path), percent-decoded."""
        if name not in self._path:  # a handler out of step with its path
            raise RuntimeError(f"path parameter {name!r} is not in this route's path")
        return self._path[name]

    def _param(self, name: str, *types: str) -> Param:
        param = self._declared.get(name)
        if param is None or param.type not in types:  # a handler out of step with its declaration
            raise RuntimeError(f"query parameter {name!r} is not declared as {'/'.join(types)} for this route")
        return param

    def has(self, name: str) -> bool:
        self._param(name, "string", "integer", "boolean", "time", "words")
        return name in self._raw

    def text(self, name: str) -> str | None:
        param = self._param(name, "string")
        values = self._raw.get(name)
        return values[0] if values else None if param.default is None else str(param.default)

    def need(self, name: str) -> str:
        """The value, else 400 naming the parameter (also for one required only without another)."""
        value = self.text(name)
        if not value:
            example = self._declared[name].example
            raise ApiError(400, f"query parameter '{name}' is required, e.g. {name}={example}")
        return value

    def integer(self, name: str) -> int:
        param = self._param(name, "integer")
        values = self._raw.get(name)
        raw = values[0] if values else str(param.default)
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
        if not param.minimum <= value <= param.maximum:
            raise ApiError(400, f"{name} must be between {param.minimum} and {param.maximum}, got {value}")
        return value

    def flag(self, name: str) -> bool:
        param = self._param(name, "boolean")
        values = self._raw.get(name)
        return values is not None and values[0].lower() in param.truthy

    def time(self, name: str) -> int | None:
        self._param(name, "time")
        values = self._raw.get(name)
        try:
            return parse_time(values[0] if values else "")
        except ValueError as exc:
            raise ApiError(400, f"{name}: {exc}") from None

    def words(self, name: str) -> set[str]:
        self._param(name, "words")
        return {w.strip().lower() for raw in self._raw.get(name, []) for w in raw.split(",") if w.strip()}
