"""upriver.local.broker pieces that need no Java: cluster ids and the identity kept across restarts."""

from __future__ import annotations

import json
import re
from pathlib import Path

from upriver.local.broker import LocalBroker, _cluster_id


def test_cluster_ids_are_22_base64url_chars_never_starting_with_a_dash() -> None:
    ids = [_cluster_id() for _ in range(5_000)]  # ~78 would start with '-' without the guard
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_identity_is_kept_across_restarts(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, tmp_path / "cache")
    first = broker._identity()
    again = broker._identity()
    assert first == again
    assert json.loads((tmp_path / "broker.json").read_text()) == first
    assert first["port"] != first["controller_port"]
