"""Bad input through the real stack (issue 13, item 2): hypothesis-generated bad messages, mixed with good
events, on the three input paths: raw bytes on the Avro events topic, JSON on the OpenLineage topic, and
HTTP bodies. Every message is bad or good by construction (the generators below), so what is expected comes
from the inputs: every bad Kafka message is dead-lettered exactly once with a reason and its source offset,
every good event's run and edges are stored, the worker lives and its lag reaches 0; every bad HTTP body gets a
4xx JSON answer with a reason (never a 500, never a hang) and every good one a 2xx."""

from __future__ import annotations

import copy
import json
import random
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from stack_support import ready_stack

from processors.lineage.validation import INVALID, UNDECODABLE
from schemas.codec import SingleObjectCodec, fingerprint, history, schema_json
from schemas.identity import node_id
from schemas.openlineage import MAX_DEPTH, MAX_EVENT_BYTES
from upriver.deploy.kafka import measure
from upriver.local.stack import LocalStack

pytestmark = pytest.mark.integration

CODEC = SingleObjectCodec("lineage_event")
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus"
SEED = 20260601
TAG = uuid.UUID(int=SEED).hex[-8:]  # in every good name, so the assertions read only this module's rows


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with ready_stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("bad"), "bad", health_enabled=False) as s:
        yield s


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """`n` examples of `strategy`, the same ones every run (derandomized, no example database)."""
    out: list[Any] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out[:n]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ---- good events (unique runs and datasets: each one's run and edge can be looked up) -----------------


def good_native(i: int) -> tuple[bytes, str, tuple[str, str]]:
    run = f"native-{TAG}-{i}"
    record = {
        "event_id": str(uuid.uuid4()), "event_time": now_ms(), "producer": "https://example.com/bad-input",
        "schema_url": "s", "event_type": "COMPLETE", "job_namespace": "bad", "job_name": f"native-{i}",
        "job_kind": "TRANSFORM", "run_id": run, "parent_run_id": None, "facets": "{}",
        "inputs": [{"kind": "DATASET", "namespace": "bad", "name": f"in-{TAG}-{i}", "version": None, "facets": None}],
        "outputs": [{"kind": "DATASET", "namespace": "bad", "name": f"out-{TAG}-{i}", "version": None,
                     "facets": None}],
    }  # fmt: skip
    edge = (node_id("DATASET", "bad", f"in-{TAG}-{i}"), node_id("DATASET", "bad", f"out-{TAG}-{i}"))
    return CODEC.encode(record), run, edge


def good_openlineage(path: str, i: int) -> tuple[dict[str, Any], str, tuple[str, str]]:
    run = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{TAG}/{path}/{i}"))
    doc = {
        "eventType": "COMPLETE", "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "producer": "https://example.com/bad-input", "run": {"runId": run},
        "job": {"namespace": "bad", "name": f"{path}-{i}"},
        "inputs": [{"namespace": "bad", "name": f"{path}-in-{TAG}-{i}"}],
        "outputs": [{"namespace": "bad", "name": f"{path}-out-{TAG}-{i}"}],
    }  # fmt: skip
    edge = (node_id("DATASET", "bad", f"{path}-in-{TAG}-{i}"), node_id("DATASET", "bad", f"{path}-out-{TAG}-{i}"))
    return doc, run, edge


# ---- bad messages, bad by construction (the expected error kind comes with each) ------------------------

KNOWN = {fingerprint(text) for text in (schema_json("lineage_event"), *history("lineage_event"))}
_valid_avro = st.builds(lambda i: good_native(10_000 + i)[0], st.integers(0, 10**6))
_avro_bad: list[st.SearchStrategy[tuple[str, bytes]]] = [
    st.just((UNDECODABLE, b"")),
    # no Avro single-object magic
    st.binary(max_size=200).filter(lambda b: b[:2] != b"\xc3\x01").map(lambda b: (UNDECODABLE, b)),
    # the magic, a fingerprint no schema has, anything
    st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=100)).filter(lambda t: t[0] not in KNOWN)
    .map(lambda t: (UNDECODABLE, b"\xc3\x01" + struct.pack("<Q", t[0]) + t[1])),
    # a valid event, then bytes after it
    st.tuples(_valid_avro, st.binary(min_size=1, max_size=20)).map(lambda t: (UNDECODABLE, t[0] + t[1])),
    # the header and nothing, or a body cut short of its first field
    st.just((UNDECODABLE, CODEC.header)),
]  # fmt: skip


def _invalid_native(change: dict[str, Any], n: int) -> bytes:
    record = {
        "event_id": str(uuid.uuid4()), "event_time": now_ms(), "producer": "p", "schema_url": "s",
        "event_type": "COMPLETE", "job_namespace": "bad", "job_name": f"j{n}", "job_kind": "OTHER", "run_id": "r",
        "parent_run_id": None, "facets": "{}", "inputs": [],
        "outputs": [{"kind": "DATASET", "namespace": "bad", "name": "o", "version": None, "facets": None}],
    }  # fmt: skip
    if "kind" in change:
        record["outputs"][0]["kind"] = change.pop("kind")
    return CODEC.encode({**record, **change})


avro_invalid = st.tuples(
    st.sampled_from(
        [
            {"event_id": "not-a-uuid"}, {"event_time": 2**62}, {"event_time": 1_767_225_600}, {"job_name": ""},
            {"job_namespace": " bad"}, {"run_id": ""}, {"producer": "p\n"}, {"kind": "DATASET\n"},
            {"kind": "dataset"}, {"kind": ""}, {"event_time": now_ms() + 3 * 86_400_000},
        ]
    ), st.integers(0, 10**6)).map(lambda t: (INVALID, _invalid_native(dict(t[0]), t[1])))  # fmt: skip
avro_undecodable = st.one_of(*_avro_bad)


def _corpus_template() -> dict[str, Any]:
    line = (CORPUS / "python-client.ndjson").read_text().splitlines()[0]
    doc: dict[str, Any] = json.loads(line)
    doc["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return doc


REQUIRED = [("eventTime",), ("producer",), ("run", "runId"), ("job", "namespace"), ("job", "name")]
NOT_A_STRING = st.sampled_from([None, "\ud800", 0, 2**62, -(2**63), 1.5, True, [], ["x"], {}, {"a": "b"}, "", "  ",
                                "x\udfff"])  # fmt: skip


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _text(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@st.composite
def openlineage_bad(draw: st.DrawFn) -> tuple[str, bytes]:
    """An OpenLineage message every rule of schemas/openlineage.py and validation refuses (kind, bytes)."""
    base = _corpus_template()
    case = draw(st.sampled_from(["required", "notjson", "truncated", "notobject", "required", "missing", "time",
                                 "deep", "sides"]))  # fmt: skip
    if case == "notjson":
        return UNDECODABLE, b"\xff" + draw(st.binary(max_size=50))
    if case == "truncated":
        text = _text(base)
        return UNDECODABLE, text[: draw(st.integers(0, len(text) - 1))]
    if case == "notobject":
        return INVALID, _text(draw(st.lists(st.integers(), max_size=3) | st.integers() | st.text(max_size=5)))
    if case == "required":
        return INVALID, _text(_set(base, draw(st.sampled_from(REQUIRED)), draw(NOT_A_STRING)))
    if case == "missing":
        return INVALID, _text(_set(base, draw(st.sampled_from(REQUIRED)), None, delete=True))
    if case == "time":
        bad_time = st.sampled_from(["yesterday", "2026-13-01T00:00:00Z", "2999-01-01T00:00:00Z",
                                    "1970-01-01T00:00:00Z", "2026-06-01T00:00:00+25:00"])  # fmt: skip
        return INVALID, _text(_set(base, ("eventTime",), draw(bad_time)))
    if case == "deep":
        n = draw(st.sampled_from([MAX_DEPTH + 1, 1_000, 100_000]))
        text = _text(_set(base, ("run", "facets", "deep"), "__DEEP__")).replace(b'"__DEEP__"', b"[" * n + b"]" * n)
        return INVALID, text
    side = draw(st.sampled_from(["inputs", "outputs"]))
    dataset = draw(st.sampled_from([{"namespace": "x"}, {"name": "x"}, {"namespace": 1, "name": "x"}, "x", None]))
    return INVALID, _text(_set(base, (side,), draw(st.sampled_from([{"a": 1}, "x", 5, [dataset]]))))


# ---- Kafka ------------------------------------------------------------------------------------------


def send_all(stack: LocalStack, topic: str, values: list[bytes]) -> list[tuple[int, int]]:
    """(partition, offset) of each value, in order (keys spread them over the partitions)."""
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap, "enable.idempotence": True,
                         "linger.ms": 5, "log_level": 3})  # fmt: skip
    where: dict[int, tuple[int, int]] = {}

    def delivered(i: int) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            assert err is None, err
            where[i] = (msg.partition(), msg.offset())

        return on_delivery

    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=f"k{i % 7}".encode(), on_delivery=delivered(i))
        producer.poll(0)
    assert producer.flush(30) == 0
    return [where[i] for i in range(len(values))]


def interleave(rnd: random.Random, bad: list[Any], good: list[Any]) -> list[tuple[bool, Any]]:
    """Bad and good in one random (seeded) order: good events between bad ones, never only at the end."""
    items = [(True, b) for b in bad] + [(False, g) for g in good]
    rnd.shuffle(items)
    return items


def test_bad_kafka_messages_are_dead_lettered_once_and_good_ones_stored(stack: LocalStack) -> None:
    rnd = random.Random(SEED)
    topics = stack.settings.topics
    # (i) the Avro events topic
    avro_bad = generate(avro_undecodable, 60) + generate(avro_invalid, 50)
    avro = interleave(rnd, avro_bad, [good_native(i) for i in range(25)])
    avro_at = send_all(stack, topics.events, [x[1] if b else x[0] for b, x in avro])
    # (ii) the OpenLineage topic
    ol_good = [good_openlineage("kafka", i) for i in range(25)]
    ol = interleave(rnd, generate(openlineage_bad(), 110), ol_good)
    ol_at = send_all(stack, topics.openlineage, [x[1] if b else _text(x[0]) for b, x in ol])

    expected: dict[tuple[str, int, int], str] = {}  # bad message -> its error kind
    good_runs: dict[str, tuple[str, str]] = {}
    for topic, items, at in ((topics.events, avro, avro_at), (topics.openlineage, ol, ol_at)):
        for (is_bad, item), (partition, offset) in zip(items, at, strict=True):
            if is_bad:
                expected[(topic, partition, offset)] = item[0]
            else:
                good_runs[item[1]] = item[2]
    assert len(expected) == sum(b for b, _ in avro + ol) >= 200 and len(good_runs) == 50

    assert stack.storage is not None
    client, db = stack.storage.read_client, stack.storage.database
    admin = AdminClient({**stack.settings.kafka_config(), "log_level": 3})

    def state() -> tuple[list[Any], set[str], set[tuple[str, str, str]], dict[str, int]]:
        letters = client.query(
            f"SELECT source_topic, source_partition, source_offset, count(), any(error_kind), any(reason) "
            f"FROM {db}.dead_letters GROUP BY source_topic, source_partition, source_offset"
        ).result_rows
        stored = {r[0] for r in client.query(f"SELECT DISTINCT run_id FROM {db}.runs").result_rows}
        edges = {(r[0], r[1], r[2]) for r in client.query(
            f"SELECT DISTINCT src, dst, run_id FROM {db}.edges WHERE position(src, '#') = 0").result_rows}  # fmt: skip
        lag = measure(admin, stack.settings.processor_id, [topics.events, topics.openlineage])
        return letters, stored, edges, lag

    deadline = time.monotonic() + 90
    while True:
        letters, stored, edges, lag = state()
        done = len(letters) >= len(expected) and set(good_runs) <= stored
        if (done and lag and not any(lag.values())) or time.monotonic() > deadline:
            break
        time.sleep(1)

    got = {(r[0], r[1], r[2]): r for r in letters}
    assert set(got) == set(expected), (set(expected) - set(got), set(got) - set(expected))
    for key, kind in expected.items():
        _, _, _, count, error_kind, reason = got[key]
        assert count == 1, (key, count)
        assert reason.strip(), key
        assert error_kind == kind, (key, error_kind, reason)
    assert set(good_runs) <= stored, set(good_runs) - stored
    for run, (src, dst) in good_runs.items():
        assert (src, dst, run) in edges, run
    assert stack.worker is not None and stack.worker.poll() is None  # the worker is alive
    assert lag == {topics.events: 0, topics.openlineage: 0}, lag
    samples = stack.worker_metrics()
    counted = sum(v for k, v in samples.items() if k.startswith("upriver_processor_dead_letters_total{"))
    assert counted == len(expected), samples


# ---- HTTP -------------------------------------------------------------------------------------------


def http(stack: LocalStack, path: str, body: bytes, headers: dict[str, str], timeout: float = 15) -> tuple[int, Any]:
    """One request on its own connection; the answer's status and parsed JSON body (None when empty)."""
    assert stack.api is not None
    host, port = stack.api.url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "x", "Connection": "close", **headers}.items())
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):  # a hang is a socket timeout, which fails the test
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload) if payload else None


def test_bad_http_bodies_get_a_4xx_reason_and_good_ones_a_2xx(stack: LocalStack) -> None:
    rnd = random.Random(SEED + 1)
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, bytes, dict[str, str], bool]] = []  # path, body, headers, bad
    good = [good_openlineage("http", i) for i in range(20)]
    for _, payload in generate(openlineage_bad(), 70):
        cases.append(("/api/v1/lineage", payload, {**json_type, "Content-Length": str(len(payload))}, True))
    for doc, _, _ in good:
        body = _text(doc)
        media = rnd.choice(["application/json", "application/json; charset=utf-8", "application/vnd.ol+json"])
        cases.append(("/api/v1/lineage", body, {"Content-Type": media, "Content-Length": str(len(body))}, False))
    ok = _text(_corpus_template())
    for media in ("text/plain", "application/x-www-form-urlencoded", "application/xml", "image/png"):
        cases.append(("/api/v1/lineage", ok, {"Content-Type": media, "Content-Length": str(len(ok))}, True))
    for length in ("abc", "-1", "1e3", " "):
        cases.append(("/api/v1/lineage", ok, {**json_type, "Content-Length": length}, True))
    huge = b" " * (MAX_EVENT_BYTES + 1)
    cases.append(("/api/v1/lineage", huge, {**json_type, "Content-Length": str(len(huge))}, True))  # 413
    cases.append(("/api/v1/lineage", b"", {**json_type, "Content-Length": "0"}, True))  # empty body
    cases.append(("/api/v1/lineage", ok[:10], {**json_type, "Content-Length": "10"}, True))  # cut JSON
    gz = {**json_type, "Content-Encoding": "gzip", "Content-Length": str(len(ok))}
    cases.append(("/api/v1/lineage", ok, gz, True))  # says gzip, is not
    cases.append(("/api/v1/lineage", ok, {**json_type, "Content-Encoding": "br", "Content-Length": str(len(ok))}, True))
    batch_bad = [p for _, p in generate(openlineage_bad(), 10)]
    body = b"[" + b",".join(p for p in batch_bad if p.strip().startswith((b"{", b"["))) + b"]"
    if body != b"[]":
        cases.append(("/api/v1/lineage/batch", body, {**json_type, "Content-Length": str(len(body))}, True))
    for body in (b"{}", b'{"events": 5}', b"5", b"[" * 100_000 + b"]" * 100_000):
        cases.append(("/api/v1/lineage/batch", body, {**json_type, "Content-Length": str(len(body))}, True))
    rnd.shuffle(cases)

    answers = []
    for path, body, headers, bad in cases:
        status, answer = http(stack, path, body, headers)
        answers.append((status, answer, bad, body[:120], headers))
    for status, answer, bad, body, headers in answers:
        if bad:
            assert 400 <= status < 500, (status, answer, body, headers)
            assert isinstance(answer, dict) and str(answer.get("error") or answer.get("failures")), (status, body)
        else:
            assert status == 201, (status, answer, body, headers)

    # a batch of good and bad events: 207, the failures are exactly the bad ones, each with its reason
    # (not those nested a thousand deep or more: the batch body itself cannot be parsed, so it is refused whole;
    # one just over the limit fails alone)
    bad_docs = [json.loads(p) for kind, p in generate(openlineage_bad(), 40) if kind == INVALID and b"[" * 999 not in p]
    bad_docs = bad_docs[:15]
    mixed = [good_openlineage("batch", i) for i in range(10)]
    events: list[Any] = [doc for doc, _, _ in mixed] + bad_docs
    order = list(range(len(events)))
    rnd.shuffle(order)
    body = _text([events[i] for i in order])
    status, answer = http(stack, "/api/v1/lineage/batch", body, {**json_type, "Content-Length": str(len(body))})
    want_bad = sorted(pos for pos, i in enumerate(order) if i >= len(mixed))
    assert status == 207, (status, answer)
    assert answer["received"] == len(events) and answer["successful"] == len(mixed)
    assert sorted(f["index"] for f in answer["failures"]) == want_bad
    assert all(f["reason"].strip() for f in answer["failures"])

    # every good body's run is stored (the 2xx was durable)
    assert stack.storage is not None
    client, db = stack.storage.read_client, stack.storage.database
    want = {run for _, run, _ in good + mixed}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = {r[0] for r in client.query(f"SELECT DISTINCT run_id FROM {db}.runs").result_rows}
        if want <= stored:
            break
        time.sleep(0.5)
    assert want <= stored, want - stored
    assert stack.worker is not None and stack.worker.poll() is None
