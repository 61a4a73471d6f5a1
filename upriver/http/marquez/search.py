"""`GET /api/v1/search`: one path, two APIs (docs/marquez.md, Search). The answer is a superset of both:

- Upriver's `query` and `nodes` (node and job ids whose id, namespace or name contains q; exact names first);
- Marquez's SearchResults, `totalCount` and `results` (SearchResource + SearchDao: datasets and jobs whose
  name is ILIKE '%q%', so `%` and `_` in q are wildcards; `filter` DATASET|JOB, `sort` NAME|UPDATE_AT,
  `namespace`, `before`/`after` YYYY-MM-DD on the updated time). `totalCount` is the number of results
  answered, as Marquez counts it. Marquez's SQL orders by a bound constant (no order at all); here NAME
  sorts by name, UPDATE_AT newest first.

`limit` bounds both lists; without it `results` has Marquez's default 10 and `nodes` Upriver's 20. The
route is not a Marquez-only route, so its refusals carry both error shapes: Upriver's `error` with
Marquez's `code`/`message` (or Dropwizard's `errors` for a constraint violation).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from upriver.http.api import MarquezError
from upriver.http.marquez.dataset_shapes import search_doc
from upriver.http.marquez.params import JAVA_INT_MAX, MarquezValidationError, count, enum
from upriver.http.spec import Param, Query

if TYPE_CHECKING:
    from upriver.readside.lineage import LineageReader

MARQUEZ_LIMIT = 10  # SearchResource's DEFAULT_LIMIT
NODES_LIMIT = 20  # the native answer's default
FILTERS = ("DATASET", "JOB")
SORTS = ("NAME", "UPDATE_AT")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PARAMS = (
    Param("q", required=True, example="orders", description="a part of a name (Marquez: `%` and `_` are wildcards)"),
    Param("filter", description="Marquez results: DATASET or JOB only (case-insensitive)"),
    Param("sort", description="Marquez results: NAME (by name) or UPDATE_AT (newest first)", default="NAME"),
    Param("limit", "integer", f"the most results and nodes (default {MARQUEZ_LIMIT} results, {NODES_LIMIT} nodes)",
          default=MARQUEZ_LIMIT, minimum=0, maximum=JAVA_INT_MAX),
    Param("namespace", description="Marquez results: in this namespace only"),
    Param("before", description="Marquez results: updated before this day (YYYY-MM-DD)", example="2022-09-15"),
    Param("after", description="Marquez results: updated after this day (YYYY-MM-DD)", example="2022-09-15"),
)  # fmt: skip


class SearchError(MarquezError):
    """A refusal in both shapes: Upriver's `error` and Marquez's `code`/`message`."""

    def body(self) -> dict[str, Any]:
        return {"error": str(self), **super().body()}


class SearchValidationError(MarquezValidationError):
    """A constraint violation in both shapes: Upriver's `error` (its own words when it has them) and
    Dropwizard's `errors`."""

    def __init__(self, status: int, message: str, upriver: str | None = None) -> None:
        super().__init__(status, upriver or message)
        self.marquez = message

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "errors": [self.marquez]}


def _refused(exc: MarquezError) -> MarquezError:
    kind = SearchValidationError if isinstance(exc, MarquezValidationError) else SearchError
    return kind(exc.status, str(exc))


def _day(q: Query, name: str) -> int | None:
    """A YYYY-MM-DD parameter as epoch ms of its midnight (UTC), as Postgres compares a date with a time."""
    text = q.text(name)
    if text is None:
        return None
    if not _DAY.match(text):
        raise SearchValidationError(400, f'query param {name} must match "^\\d{{4}}-\\d{{2}}-\\d{{2}}$"')
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise SearchError(400, f"query param {name}: {text!r} is not a date") from None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _options(q: Query) -> tuple[str | None, str, int | None]:
    """(filter, sort, limit: None when not given), each refused as Marquez refuses it."""
    try:
        given = q.text("filter")
        kind = enum("filter", [given], FILTERS)[0] if given is not None else None
        sort = enum("sort", [q.text("sort") or "NAME"], SORTS)[0]
        limit = count(q, "limit") if q.has("limit") else None
    except MarquezError as exc:
        raise _refused(exc) from None
    return kind, sort, limit


def answer(reader: LineageReader, q: Query) -> dict[str, Any]:
    """The superset answer: query, nodes (Upriver), totalCount, results (Marquez)."""
    text = q.text("q")
    if text is None or not text.strip():
        raise SearchValidationError(
            400, "query param q must not be blank", "query parameter 'q' is required, e.g. q=orders"
        )
    kind, sort, limit = _options(q)
    before, after = _day(q, "before"), _day(q, "after")
    catalog = reader.catalog_datasets
    hits = catalog.search.search(text, kind, sort, MARQUEZ_LIMIT if limit is None else limit, q.text("namespace"),
                                 before, after, catalog.names().listed())  # fmt: skip
    nodes = reader.search(text, limit=NODES_LIMIT if limit is None else limit) if limit != 0 else []
    return {"query": text, "nodes": nodes, **search_doc(hits)}
