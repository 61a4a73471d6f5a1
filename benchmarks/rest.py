"""One keep-alive HTTP connection to a REST server, timed: the benchmarks' client for Upriver's API
(benchmarks/marquez_api.py, peers.py) and Data.Rentgen's (benchmarks/rentgen.py)."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlencode


class Api:
    """`get` answers (seconds, status, JSON or None for an empty body); a bearer token if given. A failed
    request closes the connection, so the next one opens a fresh one."""

    def __init__(self, base_url: str, token: str = "") -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.base_url, self.host, self.port, self.token = base_url, host, int(port), token
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, **params: Any) -> tuple[float, int, Any]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        target = f"{path}?{urlencode(params)}" if params else path
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        started = time.perf_counter()
        try:
            self._conn.request("GET", target, headers=headers)
            resp = self._conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        took = time.perf_counter() - started
        return took, resp.status, json.loads(body) if body else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
