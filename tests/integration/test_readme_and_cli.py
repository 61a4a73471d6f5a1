"""The README's Python example runs as written, and the CLI's emit and lineage commands work."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from producers.ndjson import to_json
from producers.simulator import Simulator
from schemas.codec import SingleObjectCodec
from schemas.model import LineageEvent
from sinks.clickhouse import connect
from sinks.rows import EDGES
from upriver.cli.main import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CODEC = SingleObjectCodec("lineage_event")


def _read_topic(bootstrap: str, topic: str, expect: int) -> list[LineageEvent]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out: list[LineageEvent] = []
    for _ in range(80):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            out.append(LineageEvent.from_record(CODEC.decode(msg.value())))
            if len(out) >= expect:
                break
    consumer.close()
    return out


def test_readme_python_example_runs(kafka_bootstrap: str) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "the README should show the emitter in a python block"
    topic = f"readme-{uuid.uuid4().hex}"
    code = blocks[0].replace("127.0.0.1:9092", kafka_bootstrap).replace("upriver.events.v1", topic)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    events = _read_topic(kafka_bootstrap, topic, 3)
    assert sorted(e.event_type.value for e in events) == ["COMPLETE", "DRIFT", "START"]
    complete = next(e for e in events if e.event_type.value == "COMPLETE")
    assert (complete.job_name, complete.outputs[0].name, complete.outputs[0].version) == ("train_churn", "churn", "v7")
    assert [i.name for i in complete.inputs] == ["growth.user_activity", "growth.labels"]
    assert "all delivered" in str(scope["report"])


def test_emit_sends_good_lines_and_reports_bad_ones(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [m.event for m in Simulator(CODEC, seed=2, duplicate_rate=0, malformed_rate=0).messages(5) if m.event]
    lines = [to_json(e) for e in events]
    lines.insert(2, '{"event_id": "x"}')
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    topic = f"emit-{uuid.uuid4().hex}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("UPRIVER_EVENTS_TOPIC", topic)
    assert main(["emit", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: not sent: missing required field" in err
    assert sorted(e.event_id for e in _read_topic(kafka_bootstrap, topic, 5)) == sorted(e.event_id for e in events)


def test_lineage_command_reads_clickhouse_directly(
    chdb_url: str, ch_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = connect(chdb_url)
    rows = [
        ("dataset:w/raw", "feature:f/x", "DERIVED_FROM"),
        ("feature:f/x", "model:r/m", "TRAINED_ON"),
    ]
    full = [
        {
            "src": s,
            "dst": d,
            "edge_type": t,
            "src_version": None,
            "dst_version": None,
            "run_id": "r",
            "job": "j",
            "event_id": "e",
            "event_time": 1_767_225_600_000,
            "derived_at": 1_767_225_600_000,
        }
        for s, d, t in rows
    ]
    from sinks.rows import edge_row

    client.insert(
        f"{ch_database}.{EDGES.name}", [edge_row(r, 0, i) for i, r in enumerate(full)],
        column_names=list(EDGES.columns), column_type_names=list(EDGES.types),
    )  # fmt: skip
    monkeypatch.setenv("CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("CLICKHOUSE_DATABASE", ch_database)
    monkeypatch.setenv("UPRIVER_HOME", str(tmp_path))  # no running stack there
    assert main(["lineage", "upstream", "model:r/m"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["model:r/m", "└── feature:f/x [TRAINED_ON]", "    └── dataset:w/raw [DERIVED_FROM]"]
    assert main(["lineage", "upstream", "model:r/unknown"]) == 1
    assert "no lineage for node 'model:r/unknown'" in capsys.readouterr().err
