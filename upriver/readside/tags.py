"""Tags as Marquez shows them: the current tags of a dataset, of each of its fields and of a job, and the
defined tags with their descriptions (docs/marquez.md, Tags).

Two sources, merged:
- the tag writes of the Marquez API, each a TagChange on the tags topic, loaded into `tag_changes` by the
  sink: per (entity, field, tag) the last change wins, ordered by `changed_at` (the API server's clock, ms),
  ties by Kafka offset (one entity's changes share a partition);
- the OpenLineage `tags` facets already stored: a dataset's (and its fields', by the entries' `field`) from
  the newest run whose facets of that dataset carry a non-empty `tags` facet, a job's from its newest run's
  job facets with one (a Marquez dataset is its (namespace, name): every node so named counts). A tag's name
  is the entry's `key`. A facet tag is shown unless the API removed it at or after the time of the run
  that carried it (its end, else its start).
`datasets_tags` and `jobs_tags` answer a whole list page in three and two queries; `dataset_tags`,
`field_tags` and `job_tags` are the one-entity forms.
A write's answer must already show it, before the sink loaded it: the route hands the acknowledged change to
`acknowledged`, and this reader merges it into every answer for PENDING_S (read-your-writes in the process
that took the write; other processes see it once the sink loaded it, within a sink batch).
Never writes. Every query binds its values (no user text in SQL).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sinks.clickhouse import quote_identifier
from sinks.rows import tag_entity_id

PENDING_S = 600.0  # how long an acknowledged change is merged in (the sink loads it within a batch or so)
PENDING_MAX = 10_000  # the most acknowledged changes held (the oldest go first)
_LAST = 1 << 63  # the Kafka offset an acknowledged change sorts at: after every stored one of its millisecond

# (entity kind, field or "", tag) -> (op, changed_at): the last change of each
Latest = dict[tuple[str, str, str], tuple[str, int]]
# a dataset's tags and its fields' (field -> tags)
DatasetTags = tuple[list[str], dict[str, list[str]]]


class _Result(Protocol):
    @property
    def result_rows(self) -> Sequence[Sequence[Any]]: ...


class _Client(Protocol):
    def query(self, query: str, parameters: dict[str, Any] | None = None) -> _Result: ...


class TagsReader:
    """The current tags over `<database>`'s `tag_changes` table and the stored OpenLineage `tags` facets."""

    def __init__(self, client: _Client, database: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._db = quote_identifier(database)
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def _rows(self, sql: str, **parameters: Any) -> Sequence[Sequence[Any]]:
        return self._client.query(sql, parameters=parameters or None).result_rows

    # ---- the acknowledged changes not loaded yet -------------------------------------------------

    def acknowledged(self, change: Mapping[str, Any]) -> None:
        """A TagChange (record form) Kafka acknowledged: merged into this reader's answers for PENDING_S."""
        now = self._clock()
        with self._lock:
            self._pending[str(change["change_id"])] = (now, dict(change))
            self._pending.move_to_end(str(change["change_id"]))
            while self._pending and (
                len(self._pending) > PENDING_MAX or next(iter(self._pending.values()))[0] < now - PENDING_S
            ):
                self._pending.popitem(last=False)

    def _acknowledged(self) -> list[dict[str, Any]]:
        horizon = self._clock() - PENDING_S
        with self._lock:
            return [change for at, change in self._pending.values() if at >= horizon]

    # ---- the answers ---------------------------------------------------------------------------

    def dataset_tags(self, namespace: str, name: str) -> list[str]:
        """The dataset's current tag names, sorted."""
        return self.datasets_tags([(namespace, name)])[(namespace, name)][0]

    def field_tags(self, namespace: str, name: str) -> dict[str, list[str]]:
        """field name -> its current tag names (sorted), for each field of the dataset that has tags."""
        return self.datasets_tags([(namespace, name)])[(namespace, name)][1]

    def job_tags(self, namespace: str, name: str) -> list[str]:
        """The job's current tag names, sorted."""
        return self.jobs_tags([(namespace, name)])[(namespace, name)]

    def datasets_tags(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], DatasetTags]:
        """(namespace, name) -> (the dataset's tags, field -> its tags) of many datasets, in three queries (a
        list page's). A Marquez dataset is its (namespace, name): the facets of every node so named count."""
        keys = list(dict.fromkeys(keys))
        ids = {key: tag_entity_id("DATASET", *key) for key in keys}
        latest = self._latest(list(ids.values()), ("DATASET", "FIELD"))
        facets = self._dataset_facets(keys, ids)
        out: dict[tuple[str, str], DatasetTags] = {}
        for key, entity in ids.items():
            changes = latest.get(entity, {})
            facet, at = facets.get(key, ({}, 0))
            fields = sorted({f for (e, f, _) in changes if e == "FIELD"} | {f for f in facet if f})
            by_field = {f: _current(changes, "FIELD", f, facet.get(f, ()), at) for f in fields}
            out[key] = (
                _current(changes, "DATASET", "", facet.get("", ()), at),
                {f: t for f, t in by_field.items() if t},
            )
        return out

    def jobs_tags(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """(namespace, name) -> the job's current tags, of many jobs, in two queries."""
        keys = list(dict.fromkeys(keys))
        ids = {key: tag_entity_id("JOB", *key) for key in keys}
        latest = self._latest(list(ids.values()), ("JOB",))
        sql = (
            "SELECT job_id, argMax(JSONExtractRaw(facets, 'jobFacets', 'tags'), (t, revision)),"
            " toUnixTimestamp64Milli(max(t)) FROM ("
            "  SELECT job_id, facets, revision, coalesce(ended_at, started_at) AS t"
            f"  FROM {self._db}.runs WHERE job_id IN {{j:Array(String)}} AND position(facets, '\"tags\"') > 0"
            "   AND JSONLength(facets, 'jobFacets', 'tags', 'tags') > 0"
            ") GROUP BY job_id"
        )
        facets = {str(job): (_facet_tags(_parsed(str(text))), int(at)) for job, text, at in
                  self._rows(sql, j=list(ids.values()))} if keys else {}  # fmt: skip
        out = {}
        for key, job in ids.items():
            facet, at = facets.get(job, ({}, 0))
            out[key] = _current(latest.get(job, {}), "JOB", "", facet.get("", ()), at)
        return out

    def defined(self) -> list[dict[str, Any]]:
        """Every defined tag as Marquez lists them: [{"name", "description"}] sorted by name. A tag is defined by
        `PUT /tags/{tag}` or by tagging anything with it (Marquez creates it); its description is the last one
        a PUT gave (a PUT without one keeps it), else None."""
        described = "op = 'DEFINE' AND description IS NOT NULL"
        sql = (
            f"SELECT tag, countIf({described}), argMaxIf(assumeNotNull(description), (changed_at, kafka_offset),"
            f" {described}), toUnixTimestamp64Milli(maxIf(changed_at, {described}))"
            f" FROM {self._db}.tag_changes WHERE op IN ('ADD', 'DEFINE') GROUP BY tag"
        )
        tags: dict[str, tuple[str | None, int]] = {
            str(tag): (str(text) if count else None, int(at)) for tag, count, text, at in self._rows(sql)
        }
        for change in sorted(self._acknowledged(), key=lambda c: int(c["changed_at"])):
            if change["op"] not in ("ADD", "DEFINE"):
                continue
            text, at = tags.get(change["tag"], (None, 0))
            if change["op"] == "DEFINE" and change.get("description") is not None and change["changed_at"] >= at:
                text, at = change["description"], int(change["changed_at"])
            tags[change["tag"]] = (text, at)
        return [{"name": tag, "description": tags[tag][0]} for tag in sorted(tags)]

    def tag(self, name: str) -> dict[str, Any] | None:
        """One defined tag ({"name", "description"}), None when it is not defined."""
        return next((t for t in self.defined() if t["name"] == name), None)

    # ---- the pieces ----------------------------------------------------------------------------

    def _latest(self, entity_ids: list[str], entities: tuple[str, ...]) -> dict[str, Latest]:
        """entity id -> the last change per (entity, field, tag) of its `entities` changes, the acknowledged
        ones included."""
        sql = (
            "SELECT entity_id, change_id, entity, ifNull(field, ''), tag, op, toUnixTimestamp64Milli(changed_at),"
            f" kafka_offset FROM {self._db}.tag_changes"
            " WHERE entity_id IN {e:Array(String)} AND entity IN {k:Array(String)}"
        )
        rows = self._rows(sql, e=entity_ids, k=list(entities)) if entity_ids else []
        changes = {str(c): (int(at), int(seq), str(i), str(e), str(f), str(t), str(op))
                   for i, c, e, f, t, op, at, seq in rows}  # fmt: skip
        wanted = set(entity_ids)
        for change in self._acknowledged():
            entity = tag_entity_id(change["entity"], change["namespace"], change["name"])
            if change["entity"] in entities and entity in wanted and change["change_id"] not in changes:
                changes[change["change_id"]] = (int(change["changed_at"]), _LAST, entity, change["entity"],
                                                change.get("field") or "", change["tag"], change["op"])  # fmt: skip
        latest: dict[str, Latest] = {}
        for at, _, entity, kind, field, tag, op in sorted(changes.values()):
            latest.setdefault(entity, {})[(kind, field, tag)] = (op, at)
        return latest

    def _dataset_facets(self, keys: list[tuple[str, str]], ids: Mapping[tuple[str, str], str]
                        ) -> dict[tuple[str, str], tuple[dict[str, list[str]], int]]:  # fmt: skip
        """(namespace, name) -> (field or "" -> tag names, the run's time) of the newest `tags` facet stored for
        any node so named."""
        if not keys:
            return {}
        sql = (
            f"SELECT DISTINCT namespace, name, node_id FROM {self._db}.nodes"
            " WHERE (namespace, name) IN {k:Array(Tuple(String, String))}"
        )
        nodes = {node: key for key, node in ids.items()}
        nodes.update({str(n): (str(ns), str(nm)) for ns, nm, n in self._rows(sql, k=keys)})
        sql = (
            "SELECT i, argMax(f, (t, revision)), toUnixTimestamp64Milli(max(t)) FROM ("
            " SELECT arrayJoin(arrayFilter(x -> x.1 IN {n:Array(String)} AND position(x.2, '\"tags\"') > 0,"
            "  arrayZip(arrayConcat(output_ids, input_ids), arrayConcat(output_facets, input_facets)))) AS p,"
            "  p.1 AS i, p.2 AS f, coalesce(ended_at, started_at) AS t, revision"
            f" FROM {self._db}.runs"
            " WHERE arrayExists(x -> x IN {n:Array(String)}, input_ids)"
            " OR arrayExists(x -> x IN {n:Array(String)}, output_ids)"
            ") WHERE JSONLength(f, 'tags', 'tags') > 0 GROUP BY i"
        )
        out: dict[tuple[str, str], tuple[dict[str, list[str]], int]] = {}
        for node, text, at in self._rows(sql, n=sorted(nodes)):
            key = nodes[str(node)]
            if int(at) >= out.get(key, ({}, -1))[1]:
                facets = _parsed(str(text))
                out[key] = (_facet_tags(facets.get("tags") if isinstance(facets, dict) else None), int(at))
        return out


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # odd or absurdly deep facets read as absent
        return None


def _facet_tags(facet: Any) -> dict[str, list[str]]:
    """field or "" -> the tag names (keys) of an OpenLineage `tags` facet; odd entries skipped."""
    entries = facet.get("tags") if isinstance(facet, dict) else None
    out: dict[str, list[str]] = {}
    for entry in entries if isinstance(entries, list) else ():
        key = entry.get("key") if isinstance(entry, dict) else None
        if isinstance(key, str) and key:
            field = entry.get("field")
            out.setdefault(field if isinstance(field, str) else "", []).append(key)
    return out


def _current(latest: Latest, kind: str, field: str, facet: Iterable[str], facet_at: int) -> list[str]:
    """The tags of one entity (or field): those whose last change is an ADD, and the facet's tags unless a
    REMOVE at or after the facet's run took them off."""
    tags = {tag for (k, f, tag), (op, _) in latest.items() if k == kind and f == field and op == "ADD"}
    for tag in facet:
        op, at = latest.get((kind, field, tag), ("ADD", 0))
        if op == "ADD" or at < facet_at:
            tags.add(tag)
    return sorted(tags)
