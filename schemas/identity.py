"""Node identity, the one place that builds and reads node ids: (kind, namespace, name[, field]) <-> id.

`kind:namespace/name[#field]`, kind lower-cased. The namespace and name are kept exactly as the producer
sent them except for three escapes that make the id injective and reversible for every string:
`%` -> `%25` in both, `#` -> `%23` in both, `/` -> `%2F` in the name only. So the id's last unescaped
`/` before its first `#` ends the namespace (namespaces are URIs that hold `/` and `:`:
`dataset:duckdb:///tmp/shop.duckdb/shop.main.orders`, `dataset:s3://bucket/a%2Fb.parquet`), and the
first `#` starts the field, which is kept raw. Names without `/`, `#` or `%` read as before.

Marquez's node ids (`dataset:<ns>:<name>`, `job:<ns>:<name>`, `datasetField:<ns>:<name>:<field>`, each with an
optional `#<version>`) are parsed here too, the way Marquez's `NodeId` does. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

KIND = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ESCAPE_NS = str.maketrans({"%": "%25", "#": "%23"})
_ESCAPE_NAME = str.maketrans({"%": "%25", "#": "%23", "/": "%2F"})
_UNESCAPE = re.compile(r"%(25|23|2F)")
_UNESCAPED = {"25": "%", "23": "#", "2F": "/"}
JOB = "JOB"  # the kind of a job vertex (job:namespace/name)


class IdentityError(ValueError):
    """Not a node id (or a kind that cannot be one); the message says what is wrong."""


@dataclass(frozen=True, slots=True, order=True)
class NodeRef:
    """A node (field None) or one of its columns. `kind` is upper case (`DATASET`, `MODEL`, `JOB` ...)."""

    kind: str
    namespace: str
    name: str
    field: str | None = None

    @property
    def id(self) -> str:
        return node_id(self.kind, self.namespace, self.name, self.field)


@lru_cache(maxsize=4096)
def _kind(kind: str) -> str:
    if not KIND.fullmatch(kind):
        raise IdentityError(f"a node kind is a letter then letters, digits or '_', got {kind!r}")
    return kind.lower()


def node_id(kind: str, namespace: str, name: str, field: str | None = None) -> str:
    """The id of a node, or of its column `field` (any string, even empty: the dataset as a whole)."""
    # hot (every artifact of every event): escape only strings that hold a character to escape
    ns = namespace.translate(_ESCAPE_NS) if "%" in namespace or "#" in namespace else namespace
    nm = name.translate(_ESCAPE_NAME) if "%" in name or "#" in name or "/" in name else name
    base = f"{_kind(kind)}:{ns}/{nm}"
    return base if field is None else f"{base}#{field}"


def column_id(node: str, field: str) -> str:
    """The id of column `field` of the node with id `node`."""
    if "#" in node:
        raise IdentityError(f"{node!r} is already a column id")
    return f"{node}#{field}"


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], text) if "%" in text else text


def parse(value: str) -> NodeRef:
    """The (kind, namespace, name, field) of an id built by `node_id`; IdentityError for anything else."""
    kind, sep, rest = value.partition(":")
    if not sep or not KIND.fullmatch(kind):
        raise IdentityError(f"not a node id (kind:namespace/name): {value!r}")
    node_part, hash_, field = rest.partition("#")
    namespace, slash, name = node_part.rpartition("/")
    if not slash:
        raise IdentityError(f"not a node id (kind:namespace/name, no '/' after the namespace): {value!r}")
    return NodeRef(kind.upper(), _unescape(namespace), _unescape(name), field if hash_ else None)


def is_id(value: str) -> bool:
    try:
        parse(value)
    except IdentityError:
        return False
    return True


def node_of(value: str) -> str:
    """The node id of a column id (the id itself for a node id)."""
    return value.partition("#")[0]


def field_of(value: str) -> str | None:
    _node, hash_, field = value.partition("#")
    return field if hash_ else None


def kind_of(value: str) -> str:
    """The lower-case kind of an id (`model` for `model:registry/x`), cheap: no unescaping."""
    return value.partition(":")[0]


def job_id(namespace: str, name: str) -> str:
    return node_id(JOB, namespace, name)


# ---- Marquez node ids ---------------------------------------------------------------------------------

MARQUEZ_TYPES = {"dataset": 3, "job": 3, "datasetField": 4, "run": 2}
# Marquez (api/.../service/models/NodeId.java): when splitting on ':' and '#' gives more parts than the
# type has, split only at colons not followed by '//' (scheme://) or digits (host:port).
_MARQUEZ_DELIM = re.compile(r":(?!//|\d+)")


@dataclass(frozen=True, slots=True)
class MarquezId:
    """A Marquez node id: type `dataset` | `job` | `datasetField` | `run`, and its parts."""

    type: str
    namespace: str
    name: str
    field: str | None = None
    version: str | None = None

    def ref(self) -> NodeRef:
        kind = JOB if self.type == "job" else "DATASET"
        return NodeRef(kind, self.namespace, self.name, self.field)


def parse_marquez(value: str) -> MarquezId:
    """A Marquez nodeId, split as Marquez splits it; IdentityError when it is not one."""
    prefix = value.partition(":")[0]
    expected = MARQUEZ_TYPES.get(prefix)
    if expected is None or ":" not in value:
        raise IdentityError(f"a Marquez node id starts with dataset:, job:, datasetField: or run:, got {value!r}")
    if prefix == "run":
        return MarquezId("run", "", value.partition(":")[2])
    parts = re.split(r"[:#]", value)
    if len(parts) < expected:
        raise IdentityError(f"expected a {prefix} node id with {expected} parts, got {value!r}")
    version: str | None = None
    if len(parts) == expected:
        out = parts
    else:
        out, start = [], 0
        for match in _MARQUEZ_DELIM.finditer(value):
            if len(out) == expected - 1:
                break
            out.append(value[start : match.start()])
            start = match.end()
        if len(out) < expected - 1:
            raise IdentityError(f"expected a {prefix} node id with {expected} parts, got {value!r}")
        out.append(value[start:])
        last, hash_, ver = out[-1].partition("#")
        if hash_:
            out[-1], version = last, ver
    if prefix == "datasetField":
        return MarquezId(prefix, out[1], out[2], out[3], version)
    return MarquezId(prefix, out[1], out[2], None, version)


def marquez_candidates(value: str) -> list[MarquezId]:
    """Every way to read `value` as a Marquez id, Marquez's own reading first, then each other split at a
    ':' (namespaces such as `postgres://db:5432` defeat Marquez's heuristic); callers keep a known one."""
    first = parse_marquez(value)
    out = [first]
    prefix, _, rest = value.partition(":")
    if prefix in ("dataset", "job"):
        body, hash_, version = rest, "", ""
        if first.version is not None:
            body, hash_, version = rest.rpartition("#")
        for i, c in enumerate(body):
            if c == ":":
                cand = MarquezId(prefix, body[:i], body[i + 1 :], None, version if hash_ else None)
                if cand.namespace and cand.name and cand not in out:
                    out.append(cand)
    return out


def marquez_id(ref: NodeRef) -> str:
    """The Marquez node id of a node (datasets and other artifacts are Marquez datasets)."""
    if ref.kind == JOB:
        return f"job:{ref.namespace}:{ref.name}"
    if ref.field is not None:
        return f"datasetField:{ref.namespace}:{ref.name}:{ref.field}"
    return f"dataset:{ref.namespace}:{ref.name}"
