"""Alias groups (upriver/readside/aliases.py): every name of a dataset maps to one canonical id, whatever order the
alias pairs arrive in, and column ids follow their node."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from upriver.readside.aliases import Aliases

ids = st.sampled_from([f"dataset:ns/{c}" for c in "abcdefg"])


@given(st.lists(st.tuples(ids, ids), max_size=12), st.randoms())
def test_groups_do_not_depend_on_arrival_order(pairs: list[tuple[str, str]], rnd: object) -> None:
    shuffled = list(pairs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, b = Aliases(pairs), Aliases(shuffled)
    for value in {x for p in pairs for x in p}:
        assert a.canonical(value) == b.canonical(value)
        assert set(a.names(value)) == set(b.names(value))
        assert a.names(value)[0] == a.canonical(value)


def test_a_path_and_its_table_are_one_node_and_columns_follow() -> None:
    path, table = "dataset:file/%2Fwh%2Fshop.db%2Frevenue", "dataset:file:/wh/shop.revenue"
    aliases = Aliases([(path, table)])
    assert aliases.canonical(path) == aliases.canonical(table) == table
    assert aliases.canonical(f"{path}#amount") == f"{table}#amount"
    assert aliases.names(f"{table}#amount") == (f"{table}#amount", f"{path}#amount")
    assert aliases.canonical("dataset:other/x") == "dataset:other/x"
    assert [(r.namespace, r.name) for r in aliases.others(table)] == [("file", "/wh/shop.db/revenue")]
