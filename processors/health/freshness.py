"""Freshness of an artifact: its SLA (declared, rule or learned) and its status at a time.

`Rules` answers the rules file's per-artifact settings (SLA, unused-after) with a cache; `sla` and
`freshness` are pure functions of a node, its id, the rules and a time (docs/health.md, "Freshness").
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

from processors.health.config import HealthConfig
from processors.health.state import Node
from schemas import identity

UPDATES_KEPT = 17  # write times kept per artifact: 16 intervals for the learned SLA
# freshness statuses, as the namespace figures name them (lower case)
STATUSES = ("FRESH", "LATE", "STALE", "NEVER_SEEN", "UNKNOWN")
_CACHE_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class Freshness:
    status: str
    sla_ms: int | None
    sla_source: str  # declared | rule | learned | none
    age_ms: int | None


class Rules:
    """The config's `[[artifact]]` rules for a node: (sla, unused_after), first match per setting."""

    def __init__(self, config: HealthConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, str, str], tuple[int | None, int | None]] = {}

    def of(self, node: Node, nid: str) -> tuple[int | None, int | None]:
        key = (node.kind, node.namespace, nid)
        hit = self._cache.get(key)
        if hit is None:
            name = identity.parse(nid).name
            sla: int | None = None
            unused: int | None = None
            for rule in self.config.artifacts:
                if rule.matches(node.kind, node.namespace, name):
                    sla = rule.sla_ms if sla is None else sla
                    unused = rule.unused_after_ms if unused is None else unused
            hit = (sla, unused)
            if len(self._cache) < _CACHE_MAX:
                self._cache[key] = hit
        return hit

    def unused_after(self, node: Node, nid: str) -> int:
        unused = self.of(node, nid)[1] if self.config.artifacts else None
        return unused if unused is not None else self.config.unused_after_ms


def sla(node: Node, nid: str, rules: Rules) -> tuple[int | None, str]:
    """The artifact's SLA and where it comes from: declared on its last write, a rule, or learned."""
    if node.declared_sla is not None:
        return node.declared_sla, "declared"
    cfg = rules.config
    if cfg.artifacts:
        rule_sla = rules.of(node, nid)[0]
        if rule_sla is not None:
            return rule_sla, "rule"
    if len(node.updates) >= cfg.learn_min_updates:
        median = statistics.median(b - a for a, b in itertools.pairwise(node.updates))
        return max(cfg.learn_floor_ms, int(cfg.learn_factor * median)), "learned"
    return None, "none"


def freshness(node: Node, nid: str, rules: Rules, t: int) -> Freshness:
    """FRESH (age < SLA), LATE (< 2 x SLA), STALE, NEVER_SEEN (an SLA but no write) or UNKNOWN, at `t`."""
    limit, source = sla(node, nid, rules)
    last = node.last_update
    if last is None:
        return Freshness("NEVER_SEEN" if limit is not None else "UNKNOWN", limit, source, None)
    age = t - last
    if limit is None:
        return Freshness("UNKNOWN", None, source, age)
    status = "FRESH" if age < limit else "LATE" if age < 2 * limit else "STALE"
    return Freshness(status, limit, source, age)
