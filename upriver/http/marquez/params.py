"""Query parameters the Marquez routes share (limit, offset) and Marquez's 400 bodies for bad ones.

Marquez (Dropwizard) answers a constraint violation (`@Min(0)` on limit and offset, `@NotNull`) with
`{"errors": ["query param limit must be greater than or equal to 0"]}` and an enum parameter it cannot read
with `{"code": 400, "message": "query param type must be one of [RUN, JOB, DATASET]"}`. A limit or offset
that is no integer at all is a 404 in Marquez (Jersey's rule for query parameters); here it is a 400 that
says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from upriver.http.api import ApiError, MarquezError
from upriver.http.spec import Param, Query

JAVA_INT_MAX = 2**31 - 1  # Marquez's limit and offset are Java ints
LIMIT = Param("limit", "integer", "the most results answered", default=100, minimum=0, maximum=JAVA_INT_MAX)
OFFSET = Param("offset", "integer", "the results skipped first", default=0, minimum=0, maximum=JAVA_INT_MAX)
_NEGATIVE = re.compile(r"got -\d+$")


class MarquezValidationError(MarquezError):
    """A constraint violation, answered as Dropwizard answers one: `{"errors": [message]}`."""

    def body(self) -> dict[str, Any]:
        return {"errors": [str(self)]}


def count(q: Query, name: str) -> int:
    """A non-negative integer parameter (limit, offset), refused as Marquez refuses it."""
    try:
        return q.integer(name)
    except ApiError as exc:
        if _NEGATIVE.search(str(exc)):
            raise MarquezValidationError(400, f"query param {name} must be greater than or equal to 0") from None
        raise MarquezError(400, f"query param {exc}") from None


def page(q: Query) -> tuple[int, int]:
    """(limit, offset) of a list route."""
    return count(q, "limit"), count(q, "offset")


def enum(name: str, given: Iterable[str], values: tuple[str, ...]) -> list[str]:
    """The given values as `values` members (case-insensitive, '-' read as '_', as Dropwizard's fuzzy enum
    converter reads them), else Marquez's 400 naming the members."""
    found = []
    for raw in given:
        value = raw.strip().upper().replace("-", "_")
        if value not in values:
            raise MarquezError(400, f"query param {name} must be one of [{', '.join(values)}]")
        found.append(value)
    return found


def required(name: str) -> MarquezValidationError:
    """The error of a missing `@NotNull` parameter."""
    return MarquezValidationError(400, f"query param {name} must not be null")
