"""producers.simulator: deterministic, realistic (every kind, out-of-order, retrains, failures), and its
ground truth applies the time-travel rules as docs/lineage-model.md states them."""

from __future__ import annotations

import itertools
from collections import defaultdict

from producers.simulator import Simulator
from producers.truth import Truth
from schemas.codec import SingleObjectCodec
from schemas.model import ArtifactKind

CODEC = SingleObjectCodec("lineage_event")


def _run(n: int, seed: int = 3, **kw: float) -> tuple[list[tuple[bytes, bytes]], Simulator]:
    sim = Simulator(CODEC, seed=seed, duplicate_rate=0.05, malformed_rate=0.02, **kw)  # type: ignore[arg-type]
    out = [(m.key, CODEC.encode(m.event.to_record()) if m.event else (m.payload or b"")) for m in sim.messages(n)]
    return out, sim


def test_same_seed_same_messages() -> None:
    a, _ = _run(500)
    b, _ = _run(500)
    c, _ = _run(500, seed=4)
    assert a == b
    assert a != c


def test_counts_add_up() -> None:
    msgs, sim = _run(2_000)
    t = sim.truth
    assert t.events == 2_000
    assert t.duplicates > 0 and t.malformed > 0 and t.failed_runs > 0
    assert len(msgs) == t.events + t.duplicates + t.malformed


def test_every_artifact_kind_appears() -> None:
    _, sim = _run(3_000)
    kinds = {n.kind for n in sim.truth.nodes.values()}
    assert {k.value for k in ArtifactKind} - {"ENDPOINT", "REPORT"} <= kinds


def test_runs_arrive_out_of_order_but_times_are_true() -> None:
    sim = Simulator(CODEC, seed=5, reorder_rate=0.2, late_rate=0.05)
    by_run: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for m in sim.messages(3_000):
        if m.event is not None and m.label == "event":
            by_run[m.event.run_id].append((m.event.event_type.value, m.event.event_time))
    out_of_order = 0
    for events in by_run.values():
        times = [t for _, t in events]
        if times != sorted(times):
            out_of_order += 1
        start = [t for e, t in events if e == "START"]
        end = [t for e, t in events if e in ("COMPLETE", "FAIL")]
        if start and end:
            assert start[0] < end[0]
    assert out_of_order > 10


def test_training_set_changes_and_as_of_sees_the_old_one() -> None:
    _, sim = _run(3_000)
    t = sim.truth
    runs = t.training_runs(t.production_model)
    assert len(runs) >= 5
    sets = [inputs for _, _, inputs in runs]
    assert len(set(sets)) >= 3  # risk_signals joins at cycle 2, the raw table leaves at cycle 4
    for (_, _, before), (started, _, after) in itertools.pairwise(runs):
        if before != after:
            assert t.upstream(t.production_model, as_of=started - 1) >= before
            parents = {s for s, d, _ in t.valid_edges(started - 1) if d == t.production_model}
            assert parents == before
            parents = {s for s, d, _ in t.valid_edges(started) if d == t.production_model}
            assert parents == after
            break
    else:
        raise AssertionError("no retrain changed the training set")


def test_retired_artifact_has_no_valid_edges_after_retirement() -> None:
    _, sim = _run(3_000)
    t = sim.truth
    retired = [(n, at) for kind, n, at in t.signals if kind == "RETIRE"]
    assert retired
    node, at = retired[0]
    assert any(node in (s, d) for s, d, _ in t.valid_edges(at - 1))
    assert not any(node in (s, d) for s, d, _ in t.valid_edges(at))


def test_append_index_keeps_older_embeddings_upstream() -> None:
    _, sim = _run(3_000)
    t = sim.truth
    index = "vector_index:vectors/support_bot-index"
    embeddings = {s for s, d, _ in t.valid_edges() if d == index}
    assert len(embeddings) > 8  # several cycles' embeddings, not just the last run's


def test_failed_runs_store_rows_but_no_valid_edges() -> None:
    _, sim = _run(3_000, fail_rate=0.2)
    t = sim.truth
    failed = {rid for rid, r in t.runs.items() if r.status == "FAIL" and r.pairs}
    assert failed
    assert {row[3] for row in t.edge_rows} & failed
    valid_runs = {rid for rid, r in t.runs.items() if r.status != "FAIL"}
    for src, dst, etype in t.valid_edges():
        assert any((src, dst, etype) in t.runs[rid].pairs for rid in valid_runs)


def test_rag_deployment_reaches_prompt_and_document_source() -> None:
    _, sim = _run(3_000)
    t = sim.truth
    up = t.upstream(t.rag_deployment)
    assert Truth.prompt("support_bot") in up
    assert Truth.document_source("support_bot") in up
    assert "model:hub/llm-base" in up


def test_production_deployment_reaches_its_raw_tables_only() -> None:
    _, sim = _run(2_000)
    up = sim.truth.upstream(sim.truth.production_deployment)
    assert sim.truth.production_model in up
    assert set(Truth.raw_tables("growth")) & up
    assert not any("/risk." in n or "/search." in n for n in up)  # other teams' lineage stays apart


def test_successive_calls_continue_one_workload() -> None:
    sim = Simulator(CODEC, seed=3, duplicate_rate=0, malformed_rate=0)
    first = [m.event for m in sim.messages(100)]
    second = [m.event for m in sim.messages(50)]
    assert (len(first), len(second), sim.truth.events) == (100, 50, 150)
    assert not {e.event_id for e in first if e} & {e.event_id for e in second if e}


def test_knobs_scale_edges_without_truth() -> None:
    sim = Simulator(CODEC, seed=1, record_truth=False, **Simulator.knobs_for_edges(1_000_000))
    for _ in sim.messages(5_000):
        pass
    assert sim.truth.edge_rows_emitted > 5_000  # several edges per event at benchmark scale
    assert not sim.truth.runs and not sim.truth.edge_rows


def test_a_workload_cut_mid_run_expects_only_what_was_sent() -> None:
    """The truth records a run when its last event goes out: cutting a call short leaves no phantom edges."""
    from processors.lineage import runs

    for n in (7, 101, 333):
        sim = Simulator(CODEC, seed=9, duplicate_rate=0, malformed_rate=0, late_rate=0)
        sent = [m.event.to_record() for m in sim.messages(n) if m.event is not None]
        derived = {
            (e["src"], e["dst"], e["edge_type"], e["run_id"])
            for s in runs.merge_all(sent).values()
            for e in runs.edges(s, 0)
            if "#" not in e["src"]
        }
        assert sim.truth.edge_rows <= derived, n
