"""Aliases: every name a producer used for a dataset resolves to one canonical node. Pure: no I/O.

The `aliases` table holds (alias id, node id) pairs, one per other name an artifact was sent under (its
physical name beside a TABLE symlink, every further symlink). Pairs join names into groups (a union-find,
so pairs arriving in any order give the same groups); a group's canonical id is the smallest node id any
pair points at, so it does not depend on arrival order either. Readers map every id they read to its
canonical id and query with every id of a group, so rows stored under a name before its alias arrived
are re-pointed at read time (docs/lineage-model.md, "Aliases").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from schemas import identity


class Aliases:
    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            root = x
            while parent.setdefault(root, root) != root:
                root = parent[root]
            while parent[x] != root:  # path compression
                parent[x], x = root, parent[x]
            return root

        targets: set[str] = set()
        for alias, node in pairs:
            if alias == node:
                continue
            targets.add(node)
            a, b = find(alias), find(node)
            if a != b:
                parent[max(a, b)] = min(a, b)
        groups: dict[str, list[str]] = defaultdict(list)
        for x in parent:
            groups[find(x)].append(x)
        self._canonical: dict[str, str] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        for members in groups.values():
            pointed = sorted(m for m in members if m in targets)
            canonical = pointed[0] if pointed else min(members)
            names = (canonical, *sorted(m for m in members if m != canonical))
            for m in members:
                self._canonical[m] = canonical
            self._names[canonical] = names

    def __bool__(self) -> bool:
        return bool(self._canonical)

    def canonical(self, value: str) -> str:
        """The canonical id of a node id or of a column id (its node mapped, the field kept)."""
        if not self._canonical:
            return value
        node, field = identity.node_of(value), identity.field_of(value)
        found = self._canonical.get(node)
        if found is None:
            return value
        return found if field is None else identity.column_id(found, field)

    def names(self, value: str) -> tuple[str, ...]:
        """Every id of `value`'s group (canonical first); column ids expand to the same column of each."""
        if not self._canonical:
            return (value,)
        node, field = identity.node_of(value), identity.field_of(value)
        group = self._names.get(self._canonical.get(node, node), (node,))
        return group if field is None else tuple(identity.column_id(n, field) for n in group)

    def expand(self, ids: Iterable[str]) -> list[str]:
        """Every id of the groups of `ids`, each once."""
        out: dict[str, None] = {}
        for value in ids:
            for n in self.names(value):
                out[n] = None
        return list(out)

    def others(self, value: str) -> list[identity.NodeRef]:
        """The other names of a node, as (kind, namespace, name)."""
        return [identity.parse(n) for n in self.names(value)[1:]]
