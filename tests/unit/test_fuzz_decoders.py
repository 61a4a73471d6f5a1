"""Decoder fuzz target (issue 13, item 2): bad input is refused with a reason, never a crash.

The contract, for every input:
- OpenLineage JSON (schemas/openlineage.py `decode` + `to_record`, then `validation.problems`): a record that
  validates, or OpenLineageError with a reason (never another exception, never RecursionError);
- Avro LineageEvents (`validation.accept`): a record or a `Rejection` with a reason (never raises);
- an accepted record goes through the processor (processors/lineage/runs.py `merge`, `run_record`, `edges`)
  without raising, and its run record and edges encode with their Avro codecs.

Inputs: arbitrary bytes, and real events (tests/fixtures/compatibility, tests/fixtures/openlineage-corpus)
mutated at every path (wrong JSON types, huge ints, deep nesting, lone surrogates, deletions, truncation).
Deterministic: `derandomize=True` and no example database, so CI runs the same examples every time.
"""

from __future__ import annotations

import copy
import json
import re
import struct
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from processors.lineage import runs
from processors.lineage.validation import Rejection, accept, problems
from schemas.codec import SingleObjectCodec, make_codec
from schemas.openlineage import MAX_DEPTH, OpenLineageError, decode, to_record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = 1_790_000_000_000  # the receiver's clock (2026-09)
EVENT, RUN, EDGE = SingleObjectCodec("lineage_event"), make_codec("run"), make_codec("edge")
Path_ = tuple[str | int, ...]


def _fuzz(n: int) -> Any:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


def _corpus() -> list[dict[str, Any]]:
    """Every stored real event: the compatibility scenarios and the corpus (its invalid file too); the largest
    dbt events (multi-KB manifests) are left to the integration tests to keep each example cheap."""
    docs = [json.loads(p.read_text()) for p in sorted((FIXTURES / "compatibility").glob("*/events/*.json"))]
    for path in sorted((FIXTURES / "openlineage-corpus").glob("*.ndjson")):
        docs += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [d for d in docs if len(json.dumps(d)) <= 20_000]


CORPUS = _corpus()


def _record(doc: Any) -> dict[str, Any] | None:
    try:
        record = to_record(doc)
    except OpenLineageError:
        return None
    return None if problems(record, NOW) else record


VALID_RECORDS = [r for r in map(_record, CORPUS) if r is not None]


# ---- the contract --------------------------------------------------------------------------------


def process(record: dict[str, Any]) -> None:
    """What the processor does with an accepted record (processors/worker/app.py): merge it into its run (twice:
    the second is a duplicate), then encode the run record and every edge."""
    state, changed = runs.merge(None, record)
    assert changed
    again, changed = runs.merge(runs.RunState.from_json(json.loads(json.dumps(state.to_json()))), record)
    assert not changed and again.revision == 1
    RUN.encode(runs.run_record(state, NOW))
    for edge in runs.edges(state, NOW):
        EDGE.encode(edge)


def openlineage_contract(payload: bytes) -> dict[str, Any] | None:
    """The OpenLineage path (processors/worker/app.py `_wire_openlineage`, upriver/http/ingest.py): the validated
    record, or None when refused with OpenLineageError; any other exception fails the test."""
    try:
        record = to_record(decode(payload))
    except OpenLineageError as exc:
        assert str(exc)
        return None
    if problems(record, NOW):
        return None  # refused with these reasons (the wiring raises OpenLineageError with them)
    value = EVENT.encode(record)  # what the wiring publishes to the events topic
    accepted = accept(EVENT, value, NOW)
    assert not isinstance(accepted, Rejection), accepted
    process(accepted)
    return record


def avro_contract(payload: bytes) -> None:
    result = accept(EVENT, payload, NOW)
    if isinstance(result, Rejection):
        assert result.error_kind in ("UNDECODABLE", "INVALID") and result.reason
        return
    assert problems(result, NOW) == []
    process(result)


# ---- JSON mutations -------------------------------------------------------------------------------

DEEP = re.compile(r'"__deep_(\d+)__"')


def deep(n: int) -> str:
    """A placeholder that `serialize` turns into `n` nested arrays (too deep for json.dumps to build)."""
    return f"__deep_{n}__"


ODD_VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            False,
            0,
            -1,
            1.5,
            2**62,
            -(2**63),
            2**64,
            10**300,
            float("inf"),
            float("nan"),
            1e308,
            "",
            " ",
            "\t\n",
            "\x00",
            "a\n",
            "\ud800",
            "x\udfffy",
            "\U0001f600",
            "é",
            "Z",
            "x" * 10_000,
            {},
            [],
            [None],
            {"a": 1},
            [[[]]],
            {"namespace": {}, "name": []},
            deep(30),
            deep(MAX_DEPTH - 5),
            deep(MAX_DEPTH + 1),
            deep(5_000),
        ]
    ),
    st.recursive(  # lone surrogates included (exclude_categories=[])
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(st.characters(exclude_categories=[]), max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
)


def paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path into `doc` (object keys and list indices), the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths(value, (*prefix, i))
    return out


def mutate(doc: Any, path: Path_, op: str, value: Any) -> Any:
    if not path:
        return value if op == "set" else doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "wrap":  # an object where a string is expected, or a list of it
        parent[last] = {"value": parent[last]} if isinstance(value, dict) else [parent[last]]
    elif op == "surrogate" and isinstance(parent[last], str):
        parent[last] = parent[last][:1] + "\ud83d" + parent[last][1:]  # half of an emoji
    else:
        parent[last] = value
    return doc


def serialize(doc: Any, ascii_only: bool) -> bytes:
    """JSON text: surrogates escaped (\\ud800) when `ascii_only`, else written raw (invalid UTF-8 bytes)."""
    text = json.dumps(doc, ensure_ascii=ascii_only)
    text = DEEP.sub(lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    doc = copy.deepcopy(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(doc)))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "wrap", "surrogate"]))
        doc = mutate(doc, path, op, copy.deepcopy(draw(ODD_VALUES)))  # the constants are shared
    payload = serialize(doc, ascii_only=draw(st.booleans()))
    cut = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "insert"]))
    if cut == "truncate":
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif cut in ("flip", "insert") and payload:
        at = draw(st.integers(0, len(payload) - 1))
        byte = bytes([draw(st.integers(0, 255))])
        payload = payload[:at] + byte + payload[at + (cut == "flip") :]
    return payload


# ---- Avro mutations -------------------------------------------------------------------------------


def zigzag(n: int) -> bytes:
    """An Avro long (zig-zag varint), any size: corrupting a length or count with one is the nasty case."""
    z = (n << 1) ^ (n >> 63) if n >= 0 else ((-n) << 1) - 1
    out = bytearray()
    while True:
        byte, z = z & 0x7F, z >> 7
        out.append(byte | (0x80 if z else 0))
        if not z:
            return bytes(out)


@st.composite
def corrupted_avro(draw: st.DrawFn) -> bytes:
    data = bytearray(EVENT.encode(draw(st.sampled_from(VALID_RECORDS))))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "varint", "delete", "fingerprint"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "varint":  # a huge or negative length / count / long
            data[at:at] = zigzag(draw(st.sampled_from([2**62, -(2**62), 2**31, -1, -(2**63), 2**63 - 1])))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "fingerprint":
            data[2:10] = struct.pack("<Q", draw(st.integers(0, 2**64 - 1)))
    return bytes(data)


# facets as native producers may send them: the facets runs.py reads, with odd types at every level
_odd = st.one_of(ODD_VALUES, st.text(max_size=5))
_input_field = st.fixed_dictionaries(
    {},
    optional={
        "namespace": st.sampled_from(["ns", "\ud800", ""]) | _odd,
        "name": st.sampled_from(["t", "x#y", "a/b"]) | _odd,
        "field": st.sampled_from(["c", "\udc00", ""]) | _odd,
        "transformations": st.lists(
            st.fixed_dictionaries({}, optional={"type": st.sampled_from(["DIRECT", "\ud801"]) | _odd,
                                                "subtype": st.sampled_from(["JOIN", "\ud802"]) | _odd}) | _odd,
            max_size=3,
        ) | _odd,
    },
)  # fmt: skip
_facet_doc = st.fixed_dictionaries(
    {},
    optional={
        "columnLineage": st.fixed_dictionaries(
            {},
            optional={
                "fields": st.dictionaries(st.sampled_from(["c", "\ud800", "#", ""]),
                                          st.fixed_dictionaries({"inputFields": st.lists(_input_field, max_size=3)})
                                          | _odd, max_size=3) | _odd,
                "dataset": st.lists(_input_field, max_size=2) | _odd,
            },
        ) | _odd,
        "errorMessage": st.fixed_dictionaries({"message": _odd}) | _odd,
        "writeMode": st.fixed_dictionaries({"mode": _odd}) | _odd,
        "upriverAliases": st.lists(st.fixed_dictionaries({"namespace": _odd, "name": _odd}), max_size=2) | _odd,
        "deep": st.sampled_from([deep(10), deep(5_000)]),
    },
)  # fmt: skip
facets_text = st.one_of(
    st.none(), st.text(max_size=20), _facet_doc.map(lambda d: serialize(d, ascii_only=True).decode())
)


def mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` 19 times in 20, else `odd`: most records reach the processor, and the odd ones are there."""
    return st.integers(0, 19).flatmap(lambda n: odd if n == 13 else valid)  # not a bound: those come often


kinds = mostly(st.sampled_from(["DATASET", "MODEL", "EVALUATION", "DOCUMENT", "CHUNK", "PROMPT", "VECTOR_INDEX",
                                "X", "A_1", "DATASET\n"]), st.sampled_from(["dataset", "1A", "", "DATA SET"])
               | st.text(max_size=6))  # fmt: skip
names = mostly(st.sampled_from(["t", "x#y/z", "%2F", "a/b", "é\U0001f600", "a b"])
               | st.text(min_size=1, max_size=12).filter(lambda t: t == t.strip()),
               st.sampled_from([" pad", "", "x\n"]))  # fmt: skip
artifact = st.fixed_dictionaries(
    {"kind": kinds, "namespace": names, "name": names, "version": st.none() | st.text(max_size=5),
     "facets": facets_text}
)  # fmt: skip
native_records = st.fixed_dictionaries(
    {
        "event_id": mostly(st.uuids().map(str), st.sampled_from(["{3f1c2a9e8b7d4c219f0e5a6b7c8d9e01}", "not-a-uuid"])),
        "event_time": mostly(st.sampled_from([NOW, NOW - 1, 946_684_800_000, NOW + 86_400_000]),
                             st.sampled_from([NOW + 86_400_001, 2**62, -1, 0]) | st.integers(-(2**63), 2**63 - 1)),
        "producer": names, "schema_url": st.text(max_size=5),
        "event_type": st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER", "DRIFT", "QUALITY",
                                       "DEPLOY", "RETIRE"]),
        "job_namespace": names, "job_name": names,
        "job_kind": st.sampled_from(["INGEST", "TRANSFORM", "TRAIN", "EVALUATE", "DEPLOY", "PREDICT", "EMBED",
                                     "INDEX", "GENERATE", "RETRIEVE", "OTHER"]),
        "run_id": names, "parent_run_id": st.none() | names,
        "inputs": st.lists(artifact, max_size=3), "outputs": st.lists(artifact, max_size=3),
        "facets": st.just("{}") | facets_text.filter(lambda f: f is not None),
    }
)  # fmt: skip


NATIVE: dict[str, Any] = {
    "event_id": "3f1c2a9e-8b7d-4c21-9f0e-5a6b7c8d9e01", "event_time": NOW, "producer": "p", "schema_url": "s",
    "event_type": "COMPLETE", "job_namespace": "ns", "job_name": "j", "job_kind": "TRANSFORM", "run_id": "r",
    "parent_run_id": None, "inputs": [], "facets": "{}",
    "outputs": [{"kind": "DATASET", "namespace": "a", "name": "c", "version": None, "facets": None}],
}  # fmt: skip


# ---- properties -----------------------------------------------------------------------------------


def test_the_corpus_is_a_fair_seed() -> None:
    assert len(CORPUS) > 300 and len(VALID_RECORDS) > 300
    for record in VALID_RECORDS:  # the unmutated events pass the whole contract
        process(record)


@_fuzz(400)
@given(st.binary(max_size=300))
def test_openlineage_arbitrary_bytes(payload: bytes) -> None:
    openlineage_contract(payload)


@_fuzz(300)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))  # fmt: skip
def test_openlineage_arbitrary_json(doc: Any) -> None:
    openlineage_contract(serialize(doc, ascii_only=True))


@_fuzz(1_500)
@given(mutated_events())
@example(b'{"eventTime": "2026-06-01T00:00:00Z", "producer": "p", "run": {"runId": "r"}, '
         b'"job": {"namespace": "ns", "name": "\\ud800"}}')  # fmt: skip
@example(b'{"eventTime": "2026-06-01T00:00:00Z", "eventType": "FAIL", "producer": "p", "job": {"namespace": "n", '
         b'"name": "j"}, "run": {"runId": "r", "facets": {"errorMessage": {"message": "\\ud800"}}}}')  # fmt: skip
@example(b'{"eventTime": "2026-06-01T00:00:00Z", "producer": "p", "run": {"runId": "r"}, "job": {"namespace": "n",'
         b' "name": "j"}, "inputs": [{"namespace": "a", "name": "b"}], "outputs": [{"namespace": "a", "name": "c",'
         b' "facets": {"columnLineage": {"fields": {"\\ud800": {"inputFields": [{"namespace": "a", "name": "b",'
         b' "field": "\\udc00", "transformations": [{"type": "\\ud801"}]}]}}}}}]}')  # fmt: skip
def test_openlineage_mutated_real_events(payload: bytes) -> None:
    openlineage_contract(payload)


@_fuzz(400)
@given(st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: EVENT.header + b))
def test_avro_arbitrary_bytes(payload: bytes) -> None:
    avro_contract(payload)


@_fuzz(800)
@given(corrupted_avro())
def test_avro_corrupted_real_events(payload: bytes) -> None:
    avro_contract(payload)


@_fuzz(800)
@given(native_records)
@example({**NATIVE, "inputs": [{**NATIVE["outputs"][0], "kind": "DATASET\n"}]})  # IdentityError in merge
@example(  # RecursionError in edges (aliases_of)
    {
        **NATIVE,
        "inputs": [{"kind": "DATASET", "namespace": "a", "name": "b", "version": None,
                    "facets": '{"upriverAliases": ' + "[" * 100_000 + "]" * 100_000 + "}"}],
        "outputs": [{"kind": "DATASET", "namespace": "a", "name": "c", "version": None,
                     "facets": '{"columnLineage": {"fields": {}}}'}],
    }
)  # fmt: skip
def test_avro_any_schema_shaped_record(record: dict[str, Any]) -> None:
    """Records any native producer could encode (every string the schema allows): accepted ones never crash
    the processor, and its rules hold for them."""
    avro_contract(EVENT.encode(record))
