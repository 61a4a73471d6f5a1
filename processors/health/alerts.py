"""Opening and resolving alerts at the exact onset and clearing fact of their condition.

`Alerts.sync(kind, subject, t)` opens the alert at its onset if the condition held by `t`, and resolves
it at `t` if it no longer holds; facts that clear a condition sync their subject before and after the
change, and the timer pass syncs every subject, so an alert is opened and resolved at the same times
however often the timer ran: one record per (kind, subject) while open, a deterministic id, no flapping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from processors.health import conditions
from processors.health.facts import namespace_of
from processors.health.freshness import Rules
from processors.health.kinds import BY_NAME, NODE_ALERTS
from processors.health.state import HealthState, OpenAlert


def alert_id(kind: str, subject: str, opened_at: int) -> str:
    """The same alert gets the same id on a replay: a hash of (kind, subject, opened_at)."""
    return hashlib.sha1(f"{kind}|{subject}|{opened_at}".encode()).hexdigest()[:20]


class Alerts:
    """The open alerts of `state`, synced to the conditions; `out` holds the transitions (alert records)."""

    def __init__(self, state: HealthState, rules: Rules) -> None:
        self.state = state
        self.rules = rules
        self.out: list[dict[str, Any]] = []

    def sync_node(self, nid: str, t: int, kinds: Iterable[str] = NODE_ALERTS) -> None:
        for kind in kinds:
            self.sync(kind, nid, t)

    def sync(self, kind: str, subject: str, t: int) -> None:
        state = self.state
        key = f"{kind}|{subject}"
        onset = conditions.onset(state, self.rules, kind, subject)
        alert = state.alerts.get(key)
        if onset is not None and onset <= t:
            if alert is None:
                alert = self._open(kind, subject, onset)
                state.alerts[key] = alert
                self.out.append(alert.record())
                state.dirty.add("a:" + key)
        elif alert is not None:
            del state.alerts[key]
            self.out.append(alert.record("RESOLVED", t))
            state.dirty.add("a:" + key)

    def _open(self, kind: str, subject: str, onset: int) -> OpenAlert:
        reason, path = conditions.reason(self.state, self.rules, kind, subject)
        declared = BY_NAME[kind]
        node = self.state.nodes.get(subject)
        return OpenAlert(
            alert_id=alert_id(kind, subject, onset),
            kind=kind,
            category=declared.category,
            subject=subject,
            namespace=node.namespace if node is not None else namespace_of(subject),
            severity=declared.severity,
            reason=reason,
            path=path,
            opened_at=onset,
        )
