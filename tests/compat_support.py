"""The OpenLineage compatibility-tests scenarios copied into tests/fixtures/compatibility (see its README)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parent / "fixtures" / "compatibility"
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "expected.json").exists())


def scenario_events(name: str) -> list[dict[str, Any]]:
    """The scenario's events in file order (1.json, 2.json, ... by number), as the repository sends them."""

    def number(p: Path) -> tuple[int, str]:
        return int(re.sub(r"\D", "", p.stem) or 0), p.name

    files = sorted((SCENARIOS / name / "events").glob("*.json"), key=number)
    return [json.loads(p.read_text()) for p in files]


def expected_state(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCENARIOS / name / "expected.json").read_text())
    return doc
