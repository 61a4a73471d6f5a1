"""What the Marquez tests share: times written out independently of the code under test (an eventTime as
epoch milliseconds, Java's `Instant.toString`) and in-process calls of the routes through
`upriver.http.routes.handle` (the status and body a client would get)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from upriver.http.api import ApiError
from upriver.http.routes import handle
from upriver.readside.lineage import LineageReader

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(text: str) -> int:
    """Epoch ms of an ISO 8601 time, floored (Upriver keeps milliseconds); a time without a zone is UTC."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ((t if t.tzinfo else t.replace(tzinfo=UTC)) - EPOCH) // timedelta(milliseconds=1)


def instant(value: int | None) -> str | None:
    """Java's Instant.toString of epoch ms: milliseconds shown unless zero."""
    if value is None:
        return None
    text = (EPOCH + timedelta(milliseconds=value)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text.replace(".000Z", "Z")


def call(reader: LineageReader, path: str, **params: Any) -> tuple[int, Any]:
    """(status, body) of GET path?params, errors in the body their route answers them with."""
    try:
        return 200, handle(reader, path, urlencode(params, doseq=True))
    except ApiError as exc:
        return exc.status, exc.body()


def ok(reader: LineageReader, path: str, **params: Any) -> Any:
    """The body of a GET that must answer 200."""
    status, body = call(reader, path, **params)
    assert status == 200, (path, params, status, body)
    return body
