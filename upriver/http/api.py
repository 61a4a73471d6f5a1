"""Types the HTTP modules and their callers share: an error answer, a non-JSON answer, a health check.

The server is upriver/http/server.py; the route table upriver/http/routes.py (its `handle` answers a GET
without a server, as the CLI does); the OpenAPI document, generated from that table, upriver/http/openapi.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """A request the API refuses: `status` is the HTTP status to answer, the message its JSON `error`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON body answered: Upriver's `{"error": message}`."""
        return {"error": str(self)}


class MarquezError(ApiError):
    """An error of a Marquez route, answered as Marquez (Dropwizard's ErrorMessage) answers it:
    `{"code": status, "message": text}`."""

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "message": str(self)}


@dataclass(frozen=True)
class TextBody:
    """A non-JSON answer (CSV export)."""

    content_type: str
    text: str


# What a GET route answers: a JSON document, or text with its content type.
Answer = dict[str, Any] | TextBody

# The /healthz body of a supervising process (upriver.local.stack.LocalStack.health): `status` "ok" answers 200,
# anything else 503 with the body naming the dead stages.
HealthCheck = Callable[[], dict[str, Any]]
