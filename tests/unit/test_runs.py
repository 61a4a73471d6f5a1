"""processors.lineage.runs: merging a run's events is order-independent; edges follow the rulebook's table."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.lineage.runs import RunState, edge_type, edges, merge, merge_all, run_record

RUN = "run-1"


def _ev(eid: str, etype: str, t: int, inputs: list[Any] = (), outputs: list[Any] = (), **kw: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "event_id": eid,
        "event_time": t,
        "event_type": etype,
        "job_namespace": kw.get("ns", "pipelines.growth"),
        "job_name": kw.get("name", "train_growth_model"),
        "job_kind": kw.get("kind", "TRAIN"),
        "run_id": RUN,
        "parent_run_id": kw.get("parent"),
        "inputs": list(inputs),
        "outputs": list(outputs),
        "facets": kw.get("facets", "{}"),
    }


def _ref(kind: str, ns: str, name: str, version: str | None = None, facets: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "namespace": ns, "name": name, "version": version, "facets": facets}


FEATURE = _ref("FEATURE", "feast", "growth.user_activity", "d1")
RAW = _ref("DATASET", "warehouse", "growth.raw_transactions", "d1")
MODEL = _ref("MODEL", "registry", "growth_model", "v2")


def _fold(events: list[dict[str, Any]]) -> RunState:
    state: RunState | None = None
    for e in events:
        state, _ = merge(state, e)
    assert state is not None
    return state


def _final(events: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state = _fold(events)
    rec = run_record(state, derived_at=0)
    found = sorted(edges(state, derived_at=0), key=lambda e: (e["src"], e["dst"]))
    return rec, found


def test_start_inputs_and_complete_outputs_make_edges() -> None:
    rec, found = _final([_ev("a", "START", 10, [FEATURE, RAW]), _ev("b", "COMPLETE", 20, outputs=[MODEL])])
    assert rec["status"] == "COMPLETE" and rec["started_at"] == 10 and rec["ended_at"] == 20
    assert rec["revision"] == 2
    assert [(e["src"], e["dst"], e["edge_type"]) for e in found] == [
        ("dataset:warehouse/growth.raw_transactions", "model:registry/growth_model", "TRAINED_ON"),
        ("feature:feast/growth.user_activity", "model:registry/growth_model", "TRAINED_ON"),
    ]
    assert {e["valid_from"] for e in found} == {10}
    assert {e["run_status"] for e in found} == {"COMPLETE"}


def test_duplicate_event_changes_nothing() -> None:
    state, changed = merge(None, _ev("a", "START", 10, [FEATURE]))
    before = json.dumps(state.to_json(), sort_keys=True)
    again, changed = merge(state, _ev("a", "START", 10, [FEATURE]))
    assert not changed
    assert json.dumps(again.to_json(), sort_keys=True) == before


def test_fail_carries_error_and_wins_over_earlier_complete_only_by_time() -> None:
    fail = _ev("f", "FAIL", 30, facets=json.dumps({"errorMessage": {"message": "ValueError: boom"}}))
    rec, _ = _final([_ev("a", "START", 10), _ev("c", "COMPLETE", 20), fail])
    assert rec["status"] == "FAIL" and rec["error"] == "ValueError: boom" and rec["ended_at"] == 30
    rec, _ = _final([_ev("a", "START", 10), _ev("c", "COMPLETE", 40), fail])
    assert rec["status"] == "COMPLETE" and rec["error"] is None


def test_state_round_trips_json() -> None:
    state = _fold([_ev("a", "START", 10, [FEATURE]), _ev("b", "COMPLETE", 20, outputs=[MODEL])])
    clone = RunState.from_json(json.loads(json.dumps(state.to_json())))
    assert clone.to_json() == state.to_json()
    assert edges(clone, 0) == edges(state, 0)


def test_column_lineage_and_append_mode() -> None:
    lineage = {
        "columnLineage": {
            "fields": {
                "days_active": {
                    "inputFields": [
                        {
                            "namespace": "feast",
                            "name": "growth.user_activity",
                            "field": "ts",
                            "transformations": [{"type": "INDIRECT", "subtype": "AGGREGATION"}],
                        },
                        {"namespace": "other", "name": "t", "field": "x"},
                        {"bad": 1},
                    ]
                }
            }
        },
        "writeMode": {"mode": "APPEND"},
    }
    out = _ref("DATASET", "warehouse", "growth.features", None, json.dumps(lineage))
    _, found = _final([_ev("a", "COMPLETE", 5, [FEATURE], [out], kind="FEATURE")])
    cols = {(e["src"], e["dst"], e["edge_type"]) for e in found if "#" in e["src"]}
    assert cols == {
        ("feature:feast/growth.user_activity#ts", "dataset:warehouse/growth.features#days_active", "COLUMN_INDIRECT"),
        ("dataset:other/t#x", "dataset:warehouse/growth.features#days_active", "COLUMN_DIRECT"),
    }
    assert all(e["append"] for e in found)


def test_edge_type_table() -> None:
    assert edge_type("TRAIN", "DATASET", "MODEL") == "TRAINED_ON"
    assert edge_type("DEPLOY", "PROMPT", "DEPLOYMENT") == "PROMPTED_WITH"
    assert edge_type("DEPLOY", "VECTOR_INDEX", "DEPLOYMENT") == "RETRIEVED_FROM"
    assert edge_type("DEPLOY", "MODEL", "DEPLOYMENT") == "DEPLOYED_AS"
    assert edge_type("GENERATE", "DEPLOYMENT", "PREDICTION") == "GENERATED_BY"
    assert edge_type("TRANSFORM", "DOCUMENT", "CHUNK") == "CHUNKED_FROM"
    assert edge_type("OTHER", "DATASET", "MODEL") == "TRAINED_ON"
    assert edge_type("TRANSFORM", "DATASET", "WIDGET") == "DERIVED_FROM"


# ---- the property: any permutation of a run's events merges to the same run and the same edges ------

_kinds = st.sampled_from(["DATASET", "FEATURE", "MODEL", "PROMPT", "DOCUMENT", "CHUNK"])
_refs = st.builds(
    _ref,
    _kinds,
    st.sampled_from(["ns1", "ns2"]),
    st.sampled_from(["a", "b", "c"]),
    st.one_of(st.none(), st.sampled_from(["v1", "v2", "v3"])),
    st.one_of(st.none(), st.sampled_from(['{"x": 1}', '{"x": 2}'])),
)
_events = st.lists(
    st.builds(
        lambda i, etype, t, ins, outs, kind, parent: _ev(f"e{i}", etype, t, ins, outs, kind=kind, parent=parent),
        st.integers(0, 10_000),
        st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"]),
        st.integers(0, 50),
        st.lists(_refs, max_size=3),
        st.lists(_refs, max_size=3),
        st.sampled_from(["TRAIN", "OTHER", "DEPLOY"]),
        st.one_of(st.none(), st.sampled_from(["p1", "p2"])),
    ),
    min_size=1,
    max_size=7,
    unique_by=lambda e: e["event_id"],
)


@settings(max_examples=300, deadline=None)
@given(_events, st.randoms(use_true_random=False), st.data())
def test_any_permutation_merges_identically(events: list[dict[str, Any]], rnd: Any, data: st.DataObject) -> None:
    expected = _final(events)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    # replays and duplicates anywhere in the stream change nothing either
    extra = data.draw(st.lists(st.sampled_from(events), max_size=3))
    for e in extra:
        shuffled.insert(rnd.randrange(len(shuffled) + 1), e)
    assert _final(shuffled) == expected


def test_merge_all_groups_by_run() -> None:
    a = _ev("a", "START", 1)
    b = {**_ev("b", "START", 2), "run_id": "run-2"}
    assert set(merge_all([a, b])) == {RUN, "run-2"}


def test_lone_surrogates_in_facets_never_reach_the_avro_outputs() -> None:
    """JSON escapes like \\ud800 decode to lone surrogates, which the run and edge codecs cannot encode (the
    event was dead-lettered as PROCESSING after its run record had been published; fuzz target)."""
    from schemas.codec import make_codec

    lineage = {"columnLineage": {"fields": {
        "\ud800": {"inputFields": [{"namespace": "warehouse", "name": "t", "field": "a"}]},
        "ok": {"inputFields": [{"namespace": "warehouse", "name": "t", "field": "\udc00"},
                               {"namespace": "warehouse", "name": "t", "field": "b",
                                "transformations": [{"type": "\ud801"}, {"type": "INDIRECT", "subtype": "\ud802"}]}]},
    }}}  # fmt: skip
    out = _ref("DATASET", "warehouse", "o", facets=json.dumps(lineage))
    error = json.dumps({"errorMessage": {"message": "boom \ud800"}})
    state = merge(None, _ev("e1", "FAIL", 10, [_ref("DATASET", "warehouse", "t")], [out], facets=error))[0]
    assert state.error == "boom ?"
    make_codec("run").encode(run_record(state, 0))
    columns = [e for e in edges(state, 0) if e["edge_type"].startswith("COLUMN")]
    assert [(e["src"], e["dst"], e["edge_type"]) for e in columns] == [
        ("dataset:warehouse/t#b", "dataset:warehouse/o#ok", "COLUMN_DIRECT")  # the odd transformations skipped
    ]
    for edge in edges(state, 0):
        make_codec("edge").encode(edge)


def test_absurdly_deep_aliases_read_as_absent() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    src = _ref("DATASET", "warehouse", "t", facets='{"upriverAliases": ' + deep + "}")
    out = _ref("DATASET", "warehouse", "o", facets='{"columnLineage": {"fields": {}}}')
    state = merge(None, _ev("e1", "COMPLETE", 10, [src], [out]))[0]
    assert [e["src"] for e in edges(state, 0)] == ["dataset:warehouse/t"]  # was RecursionError
