"""Every alert kind, declared once: its name, category, severity, what it is raised on and what it means.

The engine (category and severity of each alert, the kinds checked per artifact), the read side's
per-category figure names (upriver/readside/health.py), the table in docs/health.md ("Alert kinds",
rendered by `markdown_table`) and the Avro docs of schemas/alert.avsc derive from `KINDS` or are checked
against it (tests/unit/test_health_kinds.py). Each kind's condition is in processors/health/conditions.py.
"""

from __future__ import annotations

from dataclasses import dataclass

# the `category` column of an alert and the `alerts_<category>` figures, in the order they are listed
CATEGORIES = ("stale", "orphaned", "completeness", "drift")
SEVERITIES = ("info", "warning", "critical")
SUBJECTS = ("artifact", "job")  # an alert's subject: a node id, or a job id (job:namespace/name)


@dataclass(frozen=True, slots=True)
class AlertKind:
    """One kind of alert: at most one open alert per (kind, subject)."""

    name: str
    category: str
    severity: str
    subject: str
    meaning: str  # when it opens and what resolves it (docs/health.md)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES or self.severity not in SEVERITIES or self.subject not in SUBJECTS:
            raise ValueError(f"alert kind {self.name}: category, severity or subject not declared")


# artifact kinds first, in the order an artifact's conditions are checked after a fact
KINDS: tuple[AlertKind, ...] = (
    AlertKind("STALE", "stale", "warning", "artifact",
              "not written within its SLA (declared, rule or learned); resolved by the next write"),
    AlertKind("MISSING_UPSTREAM", "orphaned", "warning", "artifact",
              "a model, deployment, endpoint, embedding or vector index no run wrote from an input, "
              "`upstream_grace` after it was first seen; resolved by such a run"),
    AlertKind("UNUSED", "orphaned", "info", "artifact",
              "no run read or wrote it within `unused_after`; resolved by the next run that does"),
    AlertKind("DRIFT_IMPACT", "drift", "critical", "artifact",
              "a drift or quality drop upstream reaches this model or deployment; resolved when it is "
              "written again after the drift"),
    AlertKind("UNREGISTERED_MODEL", "orphaned", "critical", "artifact",
              "the deployment serves a model version no valid run wrote; resolved when that version is "
              "registered or another one is deployed"),
    AlertKind("STALE_MODEL", "stale", "warning", "artifact",
              "the deployment's model version was trained on an artifact version superseded for longer "
              "than `model_lag`; resolved by a new deployment"),
    AlertKind("INCOMPLETE_RUN", "completeness", "warning", "job",
              "a run of the job has no terminal event after `run_timeout`; resolved when its last overdue "
              "run ends"),
    AlertKind("MISSING_IO", "completeness", "warning", "job",
              "a completed run lacks an input or output the job declares; resolved by its next complete run"),
)  # fmt: skip

BY_NAME: dict[str, AlertKind] = {k.name: k for k in KINDS}
NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
NODE_ALERTS: tuple[str, ...] = tuple(k.name for k in KINDS if k.subject == "artifact")
JOB_ALERTS: tuple[str, ...] = tuple(k.name for k in KINDS if k.subject == "job")


def markdown_table() -> str:
    """The alert kinds as the Markdown table docs/health.md shows (a test checks the page has it)."""
    rows = ["| kind | category | severity | subject | raised when |", "|---|---|---|---|---|"]
    rows += [f"| `{k.name}` | {k.category} | {k.severity} | {k.subject} | {k.meaning} |" for k in KINDS]
    return "\n".join(rows) + "\n"
