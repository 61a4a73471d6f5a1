"""Opening a ClickHouse client from a URL (embedded chDB or a server over HTTP) and quoting identifiers.

The only place that turns `CLICKHOUSE_URL` into a clickhouse-connect client; it never logs passwords.
It is also the only sinks module that imports clickhouse-connect: the client type and the error classes
the writer and the migrations need are re-exported from here.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

__all__ = ["ClickHouseError", "Client", "OperationalError", "connect", "quote_identifier", "redact"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_identifier(name: str) -> str:
    """`name` back-quoted for SQL; only plain identifiers are accepted, so nothing needs escaping."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"ClickHouse identifier {name!r} is not allowed: use letters, digits and underscores, "
            "not starting with a digit"
        )
    return f"`{name}`"


def redact(url: str) -> str:
    """The URL with any password replaced by `***`, safe to log or put in an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment).geturl()


def connect(url: str) -> Client:
    """A clickhouse-connect client for `chdb:///abs/dir`, `chdb://memory` or `http(s)://user:pass@host:port`.

    The URL names no database: callers qualify tables with theirs (see `sinks.migrations`).
    chDB allows one directory per process, so every client in a process must use the same chdb URL.
    """
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return _connect_chdb(url, parts)
    if parts.scheme in ("http", "https"):
        return _connect_http(url, parts)
    raise ValueError(
        f"unsupported ClickHouse URL {redact(url)!r}: use chdb:///absolute/dir for embedded ClickHouse "
        "or http(s)://user:password@host:port for a ClickHouse server"
    )


def _connect_chdb(url: str, parts: SplitResult) -> Client:
    if parts.netloc == "memory" and parts.path in ("", "/"):
        path = ":memory:"
    elif parts.netloc == "" and parts.path.startswith("/"):
        path = unquote(parts.path)
    else:
        raise ValueError(
            f"chdb URL {url!r} must name an absolute directory with three slashes, "
            "e.g. chdb:///var/lib/upriver/chdb (or chdb://memory for a throw-away engine)"
        )
    try:
        return clickhouse_connect.get_client(interface="chdb", path=path)
    except ClickHouseError as exc:
        raise RuntimeError(
            f"cannot open embedded ClickHouse at {path}: {exc}. chDB allows one directory per process "
            "and one process per directory: use the same CLICKHOUSE_URL everywhere in this process and "
            "stop any other process that holds the directory"
        ) from exc


def _connect_http(url: str, parts: SplitResult) -> Client:
    if not parts.hostname:
        raise ValueError(f"ClickHouse URL {redact(url)!r} has no host: use http(s)://user:password@host:port")
    try:
        return clickhouse_connect.get_client(
            interface=parts.scheme,
            host=parts.hostname,
            port=parts.port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else "",
            secure=parts.scheme == "https",
        )
    except OperationalError as exc:
        raise ConnectionError(
            f"ClickHouse at {redact(url)} is not reachable ({exc}): start it or fix CLICKHOUSE_URL; "
            "connecting again later is safe"
        ) from exc
