"""A request body of the OpenLineage HTTP ingest (upriver/http/ingest.py): gunzipped and bounded, and a batch
read one event at a time, each event with its text as sent. Pure.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from schemas.openlineage import TOO_DEEP

MAX_BATCH_EVENTS = 10_000
MAX_BODY_BYTES = 64 * 1024 * 1024  # a batch; each event is still held to MAX_EVENT_BYTES


class IngestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body_bytes(raw: bytes, content_encoding: str | None, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, gunzipped if it says so, never more than `limit` bytes (else 413)."""
    if (content_encoding or "").lower() in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise IngestError(400, f"body is not valid gzip: {exc}") from None
        if len(out) > limit:
            raise IngestError(413, f"body is over {limit:,} bytes once decompressed")
        return out
    if content_encoding and content_encoding.lower() != "identity":
        raise IngestError(415, f"Content-Encoding {content_encoding!r} is not supported (use gzip or none)")
    return raw


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
NOT_A_BATCH = "a batch is a JSON array of OpenLineage events (or an object with 'events')"


def batch_events(body: bytes) -> list[tuple[Any, bytes]]:
    """The events of a batch body (a JSON array of OpenLineage events, or an object with `events`), each with
    its JSON as sent (UTF-8): its raw copy, and the bytes its size and nesting are judged on; IngestError 400
    when the body is neither, 413 over MAX_BATCH_EVENTS. The events are parsed one at a time by json's own
    decoder (`raw_decode`), so each one's place in the body is known without serialising it again. Each
    event's nesting is checked on its own (`OpenLineageIngest.batch`): one too deep fails alone, as it would
    in a single POST."""
    if len(body) > MAX_BODY_BYTES:
        raise IngestError(413, f"body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,}")
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads reads bytes
        events = _batch(text)
    except RecursionError:
        raise IngestError(400, TOO_DEEP) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestError(400, f"not JSON: {exc}") from None
    if events is None:
        raise IngestError(400, NOT_A_BATCH)
    if len(events) > MAX_BATCH_EVENTS:
        raise IngestError(413, f"{len(events):,} events in one batch; the limit is {MAX_BATCH_EVENTS:,}")
    # A lone surrogate (sent as raw bytes: json reads them) can only stand inside a JSON string, where Python's
    # backslash escape of it is JSON's own: the copy stays valid UTF-8 and decodes to the same event.
    return [(event, piece.encode("utf-8", "backslashreplace")) for event, piece in events]


def _skip(text: str, i: int) -> int:
    found = _SPACE.match(text, i)
    return i if found is None else found.end()


def _batch(text: str) -> list[tuple[Any, str]] | None:
    """The elements of the body's events array with their text, or None when the body is JSON but no batch.
    ValueError (json.JSONDecodeError) when it is not JSON, as json.loads would raise it."""
    i = _skip(text, 0)
    events: list[tuple[Any, str]] | None = None
    if text.startswith("[", i):
        events, i = _array(text, i)
    elif text.startswith("{", i):
        i = _skip(text, i + 1)
        found: list[tuple[Any, str]] | None = None
        more = not text.startswith("}", i)
        while more:
            key, i = _DECODER.raw_decode(text, i)
            if not isinstance(key, str):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
            i = _skip(text, i)
            if not text.startswith(":", i):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
            i = _skip(text, i + 1)
            if key == "events" and text.startswith("[", i):  # the last "events" counts, as with json.loads
                found, i = _array(text, i)
            else:
                _, i = _DECODER.raw_decode(text, i)
                if key == "events":
                    found = None  # not an array: no batch
            i = _skip(text, i)
            more = text.startswith(",", i)
            if more:
                i = _skip(text, i + 1)
            elif not text.startswith("}", i):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
        events, i = found, i + 1
    else:
        _, i = _DECODER.raw_decode(text, i)
    if _skip(text, i) != len(text):
        raise json.JSONDecodeError("Extra data", text, i)
    return events


def _array(text: str, i: int) -> tuple[list[tuple[Any, str]], int]:
    """The JSON array at text[i] ('['): each element with its text, and the index after the array."""
    out: list[tuple[Any, str]] = []
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return out, i + 1
    while True:
        start = i
        value, i = _DECODER.raw_decode(text, i)
        out.append((value, text[start:i]))
        i = _skip(text, i)
        if text.startswith("]", i):
            return out, i + 1
        if not text.startswith(",", i):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
        i = _skip(text, i + 1)
