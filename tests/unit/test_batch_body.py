"""A batch body is read event by event (upriver/http/ingest.py `batch_events`): the events are exactly what
json.loads reads from the body, each with its own text as sent; a body json.loads refuses is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upriver.http.bodies import IngestError, batch_events

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
SPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


def _dump(value: Any, style: int) -> str:
    return [json.dumps(value), json.dumps(value, separators=(",", ":"), ensure_ascii=False),
            json.dumps(value, indent=2)][style]  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A batch body as some client might write it, and each element's text in it."""
    pieces = [_dump(v, draw(st.integers(0, 2))) for v in draw(st.lists(VALUES, max_size=5))]
    gaps = [draw(SPACE) for _ in range(2 * len(pieces) + 2)]
    inner = ",".join(gaps[2 * i] + p + gaps[2 * i + 1] for i, p in enumerate(pieces))
    array = "[" + gaps[-1] + inner + "]" if pieces else "[" + gaps[-1] + "]"
    if draw(st.booleans()):
        others = draw(st.dictionaries(st.text(max_size=5).filter(lambda k: k != "events"), VALUES, max_size=2))
        items = [json.dumps(k) + ":" + json.dumps(v) for k, v in others.items()]
        items.insert(draw(st.integers(0, len(items))), '"events"' + draw(SPACE) + ":" + draw(SPACE) + array)
        body = draw(SPACE) + "{" + draw(SPACE) + ("," + draw(SPACE)).join(items) + draw(SPACE) + "}" + draw(SPACE)
    else:
        body = draw(SPACE) + array + draw(SPACE)
    return body, pieces


@settings(max_examples=300, deadline=None)
@given(bodies())
def test_the_events_are_json_loads_own_each_with_its_text_as_sent(case: tuple[str, list[str]]) -> None:
    body, pieces = case
    doc = json.loads(body)
    want = doc["events"] if isinstance(doc, dict) else doc
    got = batch_events(body.encode())
    assert [event for event, _ in got] == want
    assert [sent for _, sent in got] == [p.encode() for p in pieces]


@pytest.mark.parametrize(
    "body",
    ["[1, 2", "[1 2]", "[1,]", "[,1]", "[1] x", "[1]]", '{"events": [1]', '{"events" [1]}', '{"events": [1],}',
     '{1: [1]}', '{"events": [1] "a": 2}', "", "  ", "[", "nul", '["\\x"]', '{"events": [1]} {}'],
)  # fmt: skip
def test_a_body_json_loads_refuses_is_refused(body: str) -> None:
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(IngestError, match="not JSON") as err:
        batch_events(body.encode())
    assert err.value.status == 400


NO_BATCH = ['{"events": 5}', '{"other": [1]}', "5", '"x"', "null", '{"events": [1], "events": 2}']


@pytest.mark.parametrize("body", NO_BATCH)
def test_json_that_is_no_batch_is_refused_saying_so(body: str) -> None:
    with pytest.raises(IngestError, match="a batch is a JSON array") as err:
        batch_events(body.encode())
    assert err.value.status == 400


def test_the_last_events_key_counts_as_with_json_loads() -> None:
    assert [e for e, _ in batch_events(b'{"events": 2, "events": [{"a": 1}]}')] == [{"a": 1}]


def test_bodies_in_utf16_and_with_a_bom_are_read_as_json_loads_reads_them() -> None:
    body = '[{"name": "modèle"}]'
    for raw in (body.encode("utf-16"), body.encode("utf-8-sig"), body.encode("utf-32-le")):
        [(event, sent)] = batch_events(raw)
        assert [event] == json.loads(raw) == [{"name": "modèle"}]
        assert sent == '{"name": "modèle"}'.encode()
