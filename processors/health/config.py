"""Health settings: durations, per-artifact SLA / retention rules and per-job expected inputs and outputs.

Read from the rules file (`UPRIVER_HEALTH_RULES`, TOML; docs/health.md, "Rules file") or built in code.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# [defaults] keys that are durations -> HealthConfig field
_DURATION_KEYS = {
    "lateness": "lateness_ms",
    "run_timeout": "run_timeout_ms",
    "upstream_grace": "upstream_grace_ms",
    "unused_after": "unused_after_ms",
    "model_lag": "model_lag_ms",
    "root_cause_window": "root_cause_window_ms",
    "learn_floor": "learn_floor_ms",
}
_ARTIFACT_KEYS = {"namespace", "kind", "name", "sla", "unused_after"}


def parse_duration(text: str | int | float) -> int:
    """Milliseconds from `90s`, `5m`, `6h`, `30d`, `250ms` or a bare number of seconds."""
    if isinstance(text, int | float):
        return int(text * 1000)
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 6h, 30d)")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2) or "s"])


@dataclass(frozen=True)
class ArtifactRule:
    """Declared SLA / retention for artifacts matching namespace, kind and name (glob patterns)."""

    namespace: str = "*"
    kind: str = "*"
    name: str = "*"
    sla_ms: int | None = None
    unused_after_ms: int | None = None

    def matches(self, kind: str, namespace: str, name: str) -> bool:
        return (
            (self.kind == "*" or self.kind.upper() == kind)
            and fnmatch.fnmatchcase(namespace, self.namespace)
            and fnmatch.fnmatchcase(name, self.name)
        )


@dataclass(frozen=True)
class JobRule:
    """Inputs and outputs (node ids) a job declares; a completed run missing one raises MISSING_IO."""

    job: str  # glob over "namespace/name"
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthConfig:
    """Every setting of the health processor; durations in milliseconds."""

    lateness_ms: int = 60_000
    run_timeout_ms: int = 6 * 3_600_000
    upstream_grace_ms: int = 10 * 60_000
    unused_after_ms: int = 30 * 86_400_000
    model_lag_ms: int = 7 * 86_400_000
    root_cause_window_ms: int = 7 * 86_400_000
    learn_min_updates: int = 5
    learn_factor: float = 3.0
    learn_floor_ms: int = 60_000
    artifacts: tuple[ArtifactRule, ...] = ()
    jobs: tuple[JobRule, ...] = ()

    @classmethod
    def from_toml(cls, path: Path | str, **overrides: Any) -> HealthConfig:
        """Rules file (docs/health.md): `[defaults]`, `[[artifact]]` and `[[job]]` tables."""
        doc = tomllib.loads(Path(path).read_text())
        return cls.from_dict(doc, **overrides)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], **overrides: Any) -> HealthConfig:
        """The rules file's tables as parsed TOML; `overrides` are HealthConfig fields and win."""
        kwargs = _defaults(doc.get("defaults") or {})
        arts = tuple(_artifact_rule(rule) for rule in doc.get("artifact", []))
        jobs = tuple(
            JobRule(job=r["job"], inputs=tuple(r.get("inputs", ())), outputs=tuple(r.get("outputs", ())))
            for r in doc.get("job", [])
        )
        return cls(**{**kwargs, "artifacts": arts, "jobs": jobs, **overrides})


def _defaults(table: Mapping[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key in _DURATION_KEYS:
            kwargs[_DURATION_KEYS[key]] = parse_duration(value)
        elif key == "learn_min_updates":
            kwargs[key] = int(value)
        elif key == "learn_factor":
            kwargs[key] = float(value)
        else:
            allowed = sorted([*_DURATION_KEYS, "learn_min_updates", "learn_factor"])
            raise ValueError(f"unknown [defaults] key {key!r}; known: {allowed}")
    return kwargs


def _artifact_rule(rule: Mapping[str, Any]) -> ArtifactRule:
    unknown = set(rule) - _ARTIFACT_KEYS
    if unknown:
        raise ValueError(f"unknown [[artifact]] key(s) {sorted(unknown)}")
    return ArtifactRule(
        namespace=rule.get("namespace", "*"),
        kind=rule.get("kind", "*"),
        name=rule.get("name", "*"),
        sla_ms=parse_duration(rule["sla"]) if "sla" in rule else None,
        unused_after_ms=parse_duration(rule["unused_after"]) if "unused_after" in rule else None,
    )
