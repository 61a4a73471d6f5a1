"""Resolving what a user types to a node id, and search (upriver/readside/nodes.py), over an in-memory
lookup, no ClickHouse. Expected ids are read off NODES below."""

from __future__ import annotations

import pytest

from upriver.readside import nodes
from upriver.readside.aliases import Aliases
from upriver.readside.model import NodeNotFound

M, A, B, OTHER_A = "model:registry/churn", "dataset:wh/a", "dataset:wh/b", "dataset:lake/a"
A_PATH = "dataset:file/%2Fwh%2Fa"  # A's physical name, an alias of A
NODES = {M: ("registry", "churn"), A: ("wh", "a"), B: ("wh", "b"), OTHER_A: ("lake", "a"), A_PATH: ("file", "/wh/a")}


class MemoryLookup:
    def __init__(self) -> None:
        self.pairs = [(A_PATH, A)]

    def aliases(self) -> Aliases:
        return Aliases(self.pairs)

    def node_exists(self, node_id: str, aliases: Aliases) -> bool:
        return any(n in NODES for n in aliases.names(node_id))

    def nodes_named(self, text: str) -> list[str]:
        return [i for i, (ns, n) in NODES.items() if text in (n, f"{ns}/{n}", f"{ns}:{n}")]

    def search_ids(self, text: str, limit: int) -> list[str]:
        return [i for i in sorted(NODES) if text in i][:limit]


def test_ids_names_and_qualified_names() -> None:
    lookup = MemoryLookup()
    assert nodes.resolve(lookup, M) == M
    assert nodes.resolve(lookup, "churn") == M
    assert nodes.resolve(lookup, "registry/churn") == M
    assert nodes.resolve(lookup, "wh/a") == A
    assert nodes.resolve(lookup, "/wh/a") == A  # the alias's name answers with the canonical node
    assert nodes.resolve(lookup, A_PATH) == A


def test_columns_marquez_ids_and_unknowns() -> None:
    lookup = MemoryLookup()
    assert nodes.resolve(lookup, "churn#score") == f"{M}#score"
    assert nodes.resolve(lookup, "dataset:wh:a") == A
    assert nodes.resolve(lookup, "model:registry/new") == "model:registry/new"  # well-formed: the walk decides
    with pytest.raises(NodeNotFound, match="ambiguous"):
        nodes.resolve(lookup, "a")  # wh/a and lake/a
    with pytest.raises(NodeNotFound, match="no node named"):
        nodes.resolve(lookup, "nothing")


def test_search_answers_canonical_ids_once() -> None:
    lookup = MemoryLookup()
    # ids containing "a": dataset:file/%2Fwh%2Fa (-> A), dataset:lake/a, dataset:wh/a, dataset:wh/b
    assert nodes.search(lookup, "a") == [A, OTHER_A, B]
    assert nodes.search(lookup, "a", limit=1) == [A]
