"""A small reference model of Marquez's column lineage, written from its source, not from Upriver's code: what
Marquez would store for a stream of OpenLineage events (api/.../db/OpenLineageDao.java `upsertColumnLineage`) and what
its recursive query answers (db/ColumnLineageDao.java `getLineage`), literally: paths of rows, `node.depth < depth -
1`, the `is_cycle` test on the path array as Marquez builds it (first element ROW(output, input), then ROW(input,
output) per step).

Stored rows: for every event with an output carrying a columnLineage facet, one row per (output column, input field),
with the output column's own transformationDescription and transformationType (Marquez reads those, not the input
fields' `transformations`). A row is created at its run's first event and updated at each later event that sends
it; `column_lineage_latest` keeps, per (input field, output field), the row updated last among those created by a
time. Events arrive in eventTime order. Two deliberate Upriver readings, stated by docs/marquez.md and
upriver/http/marquez/columns.py: a dataset is every name Upriver's alias groups join (its own name and its
symlinks, whatever the order they came in; drawn under Marquez's name for it, the name it was first sent under), and
column lineage is kept even when an input is not listed or a field is not in a schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marquez_calls import ms

FOREVER = 2**62
Key = tuple[str, str]  # a dataset (namespace, name), canonical
Col = tuple[str, str, str]  # a field (namespace, name, field)


@dataclass
class Row:
    src: Col
    dst: Col
    run: str
    created: int
    updated: int
    description: str | None
    kind: str | None


@dataclass
class Truth:
    canon: dict[Key, Key] = field(default_factory=dict)
    rows: dict[tuple[Col, Col, str], Row] = field(default_factory=dict)
    first_event: dict[str, int] = field(default_factory=dict)  # run -> its first event's time
    types: dict[tuple[str, Key], dict[str, str | None]] = field(default_factory=dict)  # (run, output) -> schema
    fields: dict[Key, set[str]] = field(default_factory=dict)  # every schema field a dataset was sent with
    job_runs: dict[Key, list[tuple[int, str, list[Key]]]] = field(default_factory=dict)  # first event, run, outputs

    def key(self, d: Mapping[str, Any]) -> Key:
        k = (d["namespace"], d["name"])
        return self.canon.get(k, k)


def _names(events: list[Mapping[str, Any]]) -> dict[Key, Key]:
    """Every name a dataset was sent under -> its alias group's name: the groups join a dataset's name with its
    symlinks; the group's name is Marquez's name of the dataset, the name (not a symlink) of the first event, in
    time order, that named any of the group's names (OpenLineageDao.upsertLineageDataset: that event creates the
    dataset; a symlink identifier only points at it)."""
    parent: dict[Key, Key] = {}

    def find(k: Key) -> Key:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    sent: list[Key] = []
    for e in events:
        for d in (e.get("inputs") or []) + (e.get("outputs") or []):
            idents = ((d.get("facets") or {}).get("symlinks") or {}).get("identifiers") or []
            names = [(d["namespace"], d["name"])] + [(i["namespace"], i["name"]) for i in idents]
            sent.append(names[0])
            for other in names[1:]:
                a, b = find(names[0]), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    first: dict[Key, Key] = {}
    for own in sent:
        first.setdefault(find(own), own)
    return {k: first[find(k)] for k in list(parent)}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def truth(events: Iterable[Mapping[str, Any]]) -> Truth:
    events = sorted(events, key=lambda e: ms(e["eventTime"]))
    t = Truth(canon=_names(events))
    for e in events:
        run, at = e["run"]["runId"], ms(e["eventTime"])
        t.first_event.setdefault(run, at)
        job = (e["job"]["namespace"], e["job"]["name"])
        outs = [t.key(d) for d in e.get("outputs") or []]
        runs = t.job_runs.setdefault(job, [])
        if not any(r[1] == run for r in runs):
            runs.append((t.first_event[run], run, []))
        entry = next(r for r in runs if r[1] == run)
        entry[2].extend(o for o in outs if o not in entry[2])
        for d in (e.get("inputs") or []) + (e.get("outputs") or []):
            schema = ((d.get("facets") or {}).get("schema") or {}).get("fields") or []
            t.fields.setdefault(t.key(d), set()).update(f["name"] for f in schema)
        for d in e.get("outputs") or []:
            _output(t, run, at, d)
    return t


def _output(t: Truth, run: str, at: int, d: Mapping[str, Any]) -> None:
    facets = d.get("facets") or {}
    out = t.key(d)
    if "schema" in facets:
        t.types[(run, out)] = {f["name"]: _text(f.get("type")) for f in facets["schema"].get("fields") or []}
    for column, spec in ((facets.get("columnLineage") or {}).get("fields") or {}).items():
        for src in spec.get("inputFields") or []:
            s = t.key(src)
            k = ((s[0], s[1], src["field"]), (out[0], out[1], column), run)
            row = t.rows.get(k)
            if row is None:
                t.rows[k] = Row(k[0], k[1], run, t.first_event[run], at, _text(spec.get("transformationDescription")),
                                _text(spec.get("transformationType")))  # fmt: skip
            else:
                row.updated = at
                row.description, row.kind = (_text(spec.get("transformationDescription")),
                                             _text(spec.get("transformationType")))  # fmt: skip


def latest(t: Truth, until: int = FOREVER) -> list[Row]:
    """`column_lineage_latest`: per (output field, input field) the row updated last, of those created by `until`."""
    best: dict[tuple[Col, Col], Row] = {}
    for row in t.rows.values():
        if row.created <= until:
            old = best.get((row.src, row.dst))
            if old is None or (row.updated, row.run) > (old.updated, old.run):
                best[(row.src, row.dst)] = row
    return list(best.values())


def lineage(t: Truth, start: set[Col], depth: int, downstream: bool, until: int = FOREVER) -> list[Row]:
    """`getLineage`'s rows: the recursive CTE over paths, as written."""
    rows = latest(t, until)
    level = [(r, 0, False, [(r.dst, r.src)]) for r in rows if r.dst in start]
    found: list[Row] = []
    while level:
        found += [r for r, _, cycle, _ in level if not cycle and r not in found]
        step = []
        for node, d, cycle, path in level:
            if cycle or not d < depth - 1:
                continue
            for adj in rows:
                if node.src == adj.dst or (downstream and adj.src == node.dst):
                    step.append((adj, d + 1, (adj.src, adj.dst) in path, [*path, (adj.src, adj.dst)]))
        level = step
    return found


def fields_of(t: Truth, ds: Key) -> set[Col]:
    """Every field Marquez has of a dataset: its schemas' (and, in Upriver, the columns its lineage names)."""
    named = {c[2] for r in t.rows.values() for c in (r.src, r.dst) if c[:2] == ds}
    return {(ds[0], ds[1], f) for f in t.fields.get(ds, set()) | named}


def job_start(t: Truth, job: Key) -> set[Col]:
    """`findFieldsUuidsByJob`: the fields of the datasets the job's newest run wrote."""
    runs = t.job_runs.get(job) or []
    if not runs:
        return set()
    _, _, outputs = max(runs)
    return {c for ds in outputs for c in fields_of(t, ds)}
