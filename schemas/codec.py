"""Avro codecs for the contract: single-object encoding (schema fingerprint) by default, Confluent wire
format when a schema registry is configured. Pure encode/decode; no Kafka I/O here.

Evolution: every schema a writer may have used stays readable. Superseded `.avsc` files move to
`schemas/history/<name>.<n>.avsc`; their fingerprints stay known and their records are resolved to the
current schema (new fields need defaults, so old payloads decode).
"""

from __future__ import annotations

import io
import json
import struct
from functools import cache
from pathlib import Path
from typing import Any, Protocol, cast

import fastavro

Record = dict[str, Any]

SCHEMA_DIR = Path(__file__).parent
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"

_EMPTY64 = 0xC15D213AA4D7A795


def _fp_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return table


_FP_TABLE = _fp_table()


def rabin_fingerprint(data: bytes) -> int:
    """The Avro spec's CRC-64-AVRO fingerprint (64-bit Rabin) of a schema's parsing canonical form."""
    fp = _EMPTY64
    for b in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ b) & 0xFF]
    return fp


class CodecError(ValueError):
    """The payload cannot be decoded with any known schema: poison, send it to the dead-letter topic."""


@cache
def schema_json(name: str) -> str:
    """The current `.avsc` text of a contract schema (`lineage_event`, `edge`, `dead_letter`)."""
    return (SCHEMA_DIR / f"{name}.avsc").read_text()


def parse(schema_text: str) -> Any:
    return fastavro.parse_schema(json.loads(schema_text))


def fingerprint(schema_text: str) -> int:
    canonical = fastavro.schema.to_parsing_canonical_form(json.loads(schema_text))
    return rabin_fingerprint(canonical.encode())


def history(name: str) -> list[str]:
    """Superseded versions of a schema, oldest first (readable forever)."""
    return [p.read_text() for p in sorted((SCHEMA_DIR / "history").glob(f"{name}.*.avsc"))]


class Codec(Protocol):
    """Encodes a record dict of one contract schema to bytes and back."""

    def encode(self, record: Record) -> bytes: ...

    def decode(self, data: bytes) -> Record: ...


def _read_body(body: io.BytesIO, size: int, writer: Any, reader: Any) -> Record:
    try:
        record = cast(Record, fastavro.schemaless_reader(body, writer, reader))
    except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, UnicodeDecodeError...
        raise CodecError(f"Avro body does not match its schema: {type(exc).__name__}: {exc}") from exc
    if body.tell() != size:
        raise CodecError(f"{size - body.tell()} trailing bytes after the Avro record")
    return record


class SingleObjectCodec:
    """Avro single-object encoding: C3 01, the 8-byte little-endian schema fingerprint, the body."""

    def __init__(self, name: str) -> None:
        self.name = name
        current = schema_json(name)
        self._schema = parse(current)
        self._fingerprint = fingerprint(current)
        self._header = SINGLE_OBJECT_MAGIC + struct.pack("<Q", self._fingerprint)
        # fingerprint -> (writer schema, reader schema or None when no resolution is needed)
        self._writers: dict[int, tuple[Any, Any]] = {self._fingerprint: (self._schema, None)}
        for old in history(name):
            self._writers.setdefault(fingerprint(old), (parse(old), self._schema))

    @property
    def header(self) -> bytes:
        return self._header

    def encode(self, record: Record) -> bytes:
        out = io.BytesIO()
        out.write(self._header)
        fastavro.schemaless_writer(out, self._schema, record)
        return out.getvalue()

    def decode(self, data: bytes) -> Record:
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MAGIC:
            raise CodecError(
                f"not an Avro single-object payload: expected magic C301, got {data[:2].hex() or 'nothing'}"
            )
        (fp,) = struct.unpack_from("<Q", data, 2)
        schemas = self._writers.get(fp)
        if schemas is None:
            raise CodecError(f"unknown schema fingerprint {fp:016x} for {self.name}")
        body = io.BytesIO(data)
        body.seek(10)
        return _read_body(body, len(data), schemas[0], schemas[1])


class SchemaRegistry(Protocol):
    """The part of confluent_kafka's SchemaRegistryClient the Confluent codec uses."""

    def register_schema(self, subject_name: str, schema: Any) -> int: ...

    def get_schema(self, schema_id: int) -> Any: ...


class ConfluentCodec:
    """Confluent wire format: 00, the 4-byte big-endian registry schema id, the body."""

    def __init__(self, name: str, registry: SchemaRegistry, subject: str) -> None:
        self.name = name
        self._registry = registry
        self._subject = subject
        self._schema_text = schema_json(name)
        self._schema = parse(self._schema_text)
        self._header: bytes | None = None
        self._readers: dict[int, tuple[Any, Any]] = {}

    def _register(self) -> bytes:
        from confluent_kafka.schema_registry import Schema

        schema_id = self._registry.register_schema(self._subject, Schema(self._schema_text, "AVRO"))
        self._readers[schema_id] = (self._schema, None)
        return CONFLUENT_MAGIC + struct.pack(">I", schema_id)

    def encode(self, record: Record) -> bytes:
        if self._header is None:
            self._header = self._register()
        out = io.BytesIO()
        out.write(self._header)
        fastavro.schemaless_writer(out, self._schema, record)
        return out.getvalue()

    def decode(self, data: bytes) -> Record:
        if len(data) < 5 or data[:1] != CONFLUENT_MAGIC:
            raise CodecError(
                f"not a Confluent wire-format payload: expected magic 00, got {data[:1].hex() or 'nothing'}"
            )
        (schema_id,) = struct.unpack_from(">I", data, 1)
        schemas = self._readers.get(schema_id)
        if schemas is None:
            try:
                writer_text = self._registry.get_schema(schema_id).schema_str
            except Exception as exc:  # registry clients raise their own error types
                raise CodecError(f"schema id {schema_id} unknown to the registry: {exc}") from exc
            writer = parse(writer_text)
            same = fingerprint(writer_text) == fingerprint(self._schema_text)
            schemas = (writer, None) if same else (writer, self._schema)
            self._readers[schema_id] = schemas
        body = io.BytesIO(data)
        body.seek(5)
        return _read_body(body, len(data), schemas[0], schemas[1])


def make_codec(name: str, registry_url: str = "", topic: str = "") -> Codec:
    """The codec the settings ask for: Confluent wire format when a registry URL is set."""
    if not registry_url:
        return SingleObjectCodec(name)
    from confluent_kafka.schema_registry import SchemaRegistryClient

    # new_client() is the only way to get the in-process mock:// registry (notes/kafka-local.md).
    client = SchemaRegistryClient.new_client({"url": registry_url})
    return ConfluentCodec(name, client, subject=f"{topic or name}-value")
