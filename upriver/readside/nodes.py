"""Finding nodes by what a user types: an id, any name it was sent under, a bare or qualified name, a
Marquez id, `NAME#column`; and substring search. Pure logic over a `NodeLookup` (queries.py implements it).

Ids themselves (kind:namespace/name[#field]) are built and parsed by schemas/identity.py.
"""

from __future__ import annotations

from typing import Protocol

from schemas import identity
from upriver.readside.aliases import Aliases
from upriver.readside.model import NodeNotFound


class NodeLookup(Protocol):
    def aliases(self) -> Aliases: ...

    def node_exists(self, node_id: str, aliases: Aliases) -> bool: ...

    def nodes_named(self, text: str) -> list[str]: ...

    def search_ids(self, text: str, limit: int) -> list[str]: ...


def resolve(lookup: NodeLookup, text: str) -> str:
    """The canonical node id of an id, of any name it was sent under, or of an unambiguous name
    (`growth_model`, `registry/growth_model`, a Marquez `dataset:ns:name`)."""
    aliases = lookup.aliases()
    if identity.is_id(text) and lookup.node_exists(text, aliases):
        return aliases.canonical(text)
    table, hash_, column = text.rpartition("#")
    if hash_ and table and not identity.is_id(text):  # NAME#column (the CLI's --column NAME.COLUMN)
        try:
            return identity.column_id(resolve(lookup, table), column)
        except NodeNotFound:
            pass
    if text.partition(":")[0] in identity.MARQUEZ_TYPES:
        try:
            for cand in identity.marquez_candidates(text):
                if cand.type != "run" and lookup.node_exists(cand.ref().id, aliases):
                    return aliases.canonical(cand.ref().id)
        except identity.IdentityError:
            pass
    matches = sorted({aliases.canonical(n) for n in lookup.nodes_named(text)})
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NodeNotFound(f"{text!r} is ambiguous: {', '.join(matches[:10])}")
    if identity.is_id(text):
        return aliases.canonical(text)  # a well-formed id nobody has sent (yet): the walk says so
    raise NodeNotFound(f"no node named {text!r}; give its id (kind:namespace/name)")


def search(lookup: NodeLookup, text: str, limit: int = 20) -> list[str]:
    """Node and job ids whose id, namespace, name or any alias contains `text` (case-insensitive),
    exact names first; aliases answer with their canonical node."""
    found = lookup.search_ids(text, 4 * limit)
    aliases = lookup.aliases()
    out: dict[str, None] = {}
    for node in found:
        out[aliases.canonical(node)] = None
    return list(out)[:limit]
