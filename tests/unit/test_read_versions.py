"""The version each run's input read (upriver/readside/dataset_versions.py `read_versions`), on hand-made
candidates: the rules of Marquez's RunDao as docs/marquez.md states them — the dataset's version of the
producer version the event named when there is one; else the newest version created before the run started
(among versions created at one instant, a write before a first read, then the greater run id); else the oldest;
none when the dataset has no version."""

from __future__ import annotations

from upriver.readside.dataset_versions import read_versions

# dataset 0: a first read at t=10 (w=0, run r0), writes at 20 (r1, version "v1") and 30 (r2 and r3, same instant)
CANDIDATES = {
    0: [(30, 1, "r3", "v3"), (10, 0, "r0", "v0"), (20, 1, "r1", "v1"), (30, 1, "r2", "v2"), (30, 0, "r9", "vx")],
    1: [(50, 1, "w", "only")],
}


def test_a_named_producer_version_wins_when_the_dataset_has_it() -> None:
    assert read_versions(CANDIDATES, [(0, 5, "v2")]) == [("v2", "")]
    assert read_versions(CANDIDATES, [(0, 25, "unknown")]) == [("v1", "r1")]  # not a version: by time


def test_the_newest_version_created_before_the_run_started() -> None:
    assert read_versions(CANDIDATES, [(0, 21, "")]) == [("v1", "r1")]
    assert read_versions(CANDIDATES, [(0, 20, "")]) == [("v0", "")]  # strictly before: a first read's version
    # three created at 30: the writes before the read, then the greater run id
    assert read_versions(CANDIDATES, [(0, 31, "")]) == [("v3", "r3")]


def test_before_every_version_the_oldest_and_none_without_versions() -> None:
    assert read_versions(CANDIDATES, [(0, 1, "")]) == [("v0", "")]
    assert read_versions(CANDIDATES, [(1, 10, "")]) == [("only", "w")]
    assert read_versions(CANDIDATES, [(2, 10, "x")]) == [None]


def test_answers_keep_the_order_asked() -> None:
    asked = [(1, 99, ""), (0, 31, ""), (2, 0, ""), (0, 5, "v1")]
    assert read_versions(CANDIDATES, asked) == [("only", "w"), ("v3", "r3"), None, ("v1", "")]
