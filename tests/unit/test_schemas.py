"""The contract: .avsc <-> typed model agreement, codecs, golden payloads, evolution."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import typing
from pathlib import Path

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import codec as codec_mod
from schemas.codec import (
    CodecError,
    ConfluentCodec,
    SingleObjectCodec,
    fingerprint,
    make_codec,
    rabin_fingerprint,
    schema_json,
)
from schemas.model import MODELS, ArtifactRef, Edge, EventType, JobKind, LineageEvent

GOLDEN = Path(codec_mod.SCHEMA_DIR) / "golden"


def _avsc(name: str) -> dict[str, typing.Any]:
    parsed: dict[str, typing.Any] = json.loads(schema_json(name))
    return parsed


def _nullable(avro_type: typing.Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_mirrors_avsc_names_order_nullability(name: str) -> None:
    model = MODELS[name]
    avsc_fields = _avsc(name)["fields"]
    hints = typing.get_type_hints(model)
    model_fields = {f.name: f for f in dataclasses.fields(model)}
    assert set(model_fields) == {f["name"] for f in avsc_fields}
    for f in avsc_fields:
        optional = type(None) in typing.get_args(hints[f["name"]])
        assert optional == _nullable(f["type"]), f"{name}.{f['name']} nullability differs"
    # to_record() emits the fields in .avsc order.
    sample = _sample(name)
    assert list(sample.to_record()) == [f["name"] for f in avsc_fields]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_defaults_match_avsc_defaults(name: str) -> None:
    model_fields = {f.name: f for f in dataclasses.fields(MODELS[name])}
    for f in _avsc(name)["fields"]:
        if "default" not in f:
            continue
        default = model_fields[f["name"]].default
        if isinstance(default, tuple):
            default = list(default)
        assert default == f["default"], f"{name}.{f['name']}"


def test_enums_mirror_avsc_symbols() -> None:
    fields = {f["name"]: f["type"] for f in _avsc("lineage_event")["fields"]}
    assert [e.value for e in EventType] == fields["event_type"]["symbols"]
    assert [k.value for k in JobKind] == fields["job_kind"]["symbols"]


def _sample(name: str) -> typing.Any:
    record = _golden_record(name)
    return MODELS[name].from_record(record)


def _golden_record(name: str) -> dict[str, typing.Any]:
    raw = json.loads((GOLDEN / f"{name}.v1.json").read_text())
    return {k: bytes.fromhex(v["$hex"]) if isinstance(v, dict) and "$hex" in v else v for k, v in raw.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_golden_payloads_still_decode(name: str) -> None:
    """Payloads written by v1 producers must decode forever: a breaking schema change fails here."""
    payload = (GOLDEN / f"{name}.v1.bin").read_bytes()
    decoded = SingleObjectCodec(name).decode(payload)
    expected = _golden_record(name)
    assert {k: decoded[k] for k in expected} == expected
    # and the typed model takes it
    assert MODELS[name].from_record(decoded).to_record() == decoded


def test_rabin_fingerprint_matches_avro_spec_vector_and_fastavro() -> None:
    # From Apache Avro's share/test/data/schema-tests.txt: "null" -> 7195948357588979594.
    assert rabin_fingerprint(b'"null"') == 7195948357588979594
    text = schema_json("edge")
    canonical = fastavro.schema.to_parsing_canonical_form(json.loads(text))
    expected_hex = fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")
    assert struct.pack("<Q", fingerprint(text)).hex() == expected_hex


def test_single_object_header() -> None:
    c = SingleObjectCodec("edge")
    data = c.encode(_sample("edge").to_record())
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == struct.pack("<Q", fingerprint(schema_json("edge")))


refs = st.builds(
    ArtifactRef,
    kind=st.sampled_from(["DATASET", "MODEL", "FEATURE", "CUSTOM_KIND"]),
    namespace=st.text(min_size=1, max_size=20),
    name=st.text(min_size=1, max_size=40),
    version=st.none() | st.text(max_size=10),
    facets=st.none() | st.just('{"a":1}'),
)
events = st.builds(
    LineageEvent,
    event_id=st.uuids().map(str),
    event_time=st.integers(min_value=0, max_value=2**62),
    producer=st.text(max_size=30),
    event_type=st.sampled_from(list(EventType)),
    job_namespace=st.text(max_size=20),
    job_name=st.text(max_size=20),
    run_id=st.text(max_size=36),
    job_kind=st.sampled_from(list(JobKind)),
    parent_run_id=st.none() | st.text(max_size=36),
    inputs=st.lists(refs, max_size=4).map(tuple),
    outputs=st.lists(refs, max_size=4).map(tuple),
    facets=st.just("{}") | st.just('{"x":{"y":[1,2]}}'),
)


@given(events)
def test_lineage_event_round_trips_single_object(event: LineageEvent) -> None:
    c = SingleObjectCodec("lineage_event")
    assert LineageEvent.from_record(c.decode(c.encode(event.to_record()))) == event


def test_confluent_wire_format_with_mock_registry() -> None:
    c = make_codec("edge", "mock://contract-test", "upriver.edges.v1")
    assert isinstance(c, ConfluentCodec)
    edge = _sample("edge")
    data = c.encode(edge.to_record())
    assert data[:1] == b"\x00"
    (schema_id,) = struct.unpack(">I", data[1:5])
    assert schema_id >= 1
    assert Edge.from_record(c.decode(data)) == edge
    # A consumer's codec that never encoded anything resolves the writer schema by id. The mock
    # registry keeps state per client object, so the two codecs share one client here.
    from confluent_kafka.schema_registry import SchemaRegistryClient

    registry = SchemaRegistryClient.new_client({"url": "mock://contract-test-shared"})
    producer_side = ConfluentCodec("edge", registry, "upriver.edges.v1-value")
    other = ConfluentCodec("edge", registry, "upriver.edges.v1-value")
    data = producer_side.encode(edge.to_record())
    assert Edge.from_record(other.decode(data)) == edge
    with pytest.raises(CodecError, match="unknown to the registry"):
        other.decode(b"\x00" + struct.pack(">I", 999_999) + data[5:])
    with pytest.raises(CodecError, match="magic 00"):
        other.decode(SingleObjectCodec("edge").encode(edge.to_record()))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "magic C301"),
        (b'{"event_id": 1}', "magic C301"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown schema fingerprint"),
    ],
)
def test_single_object_rejects_foreign_payloads(payload: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        SingleObjectCodec("lineage_event").decode(payload)


def test_truncated_and_trailing_bytes_are_codec_errors() -> None:
    c = SingleObjectCodec("lineage_event")
    good = (GOLDEN / "lineage_event.v1.bin").read_bytes()
    with pytest.raises(CodecError, match="does not match"):
        c.decode(good[: len(good) // 2])
    with pytest.raises(CodecError, match="trailing"):
        c.decode(good + b"\x00\x00")


def test_old_writer_schema_resolves_to_current(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event written before `facets` and `job_kind` existed decodes with their defaults."""
    current = _avsc("lineage_event")
    old = dict(current, fields=[f for f in current["fields"] if f["name"] not in ("facets", "job_kind")])
    old_text = json.dumps(old)
    monkeypatch.setattr(codec_mod, "history", lambda name: [old_text] if name == "lineage_event" else [])
    record = {k: v for k, v in _golden_record("lineage_event").items() if k not in ("facets", "job_kind")}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(old), record)
    payload = b"\xc3\x01" + struct.pack("<Q", fingerprint(old_text)) + body.getvalue()
    decoded = SingleObjectCodec("lineage_event").decode(payload)
    assert decoded["facets"] == "{}"
    assert decoded["job_kind"] == "OTHER"
    assert decoded["run_id"] == record["run_id"]
