"""A stream of OpenLineage RunEvents as JSON messages keyed as the openlineage-python Kafka transport keys them
(`run:{job namespace}/{job name}`: a run's events land on its job's partition, not its run id's), with what a
correct consumer holds after it, by the spec's rule (every input x output pair of a run is an edge). Producers
retry (the same event sent twice) and some messages are not JSON. Used by the handler's crash model
(tests/unit/test_handling_faults.py) and the fault suite's OpenLineage runs (tests/faults/harness.py)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from schemas.identity import node_id

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/client/python"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
NOT_JSON = b'{"eventType": "COMPLETE", "run": '


@dataclass
class OpenLineageStream:
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, JSON value) in sending order
    edges: set[tuple[str, str, str]] = field(default_factory=set)  # (src node id, dst node id, run id)
    runs: set[str] = field(default_factory=set)
    malformed: int = 0


def ol_stream(seed: int, runs: int, jobs: int = 4, datasets: int = 10) -> OpenLineageStream:
    """`runs` runs of `jobs` jobs, each a START with one input and a COMPLETE with two inputs and one or two
    outputs; one run in 10 is sent with a retried event, one in 5 is followed by a message that is not JSON."""
    rng = random.Random(seed)
    names = [("postgres://db:5432", f"shop.public.t{i}") for i in range(datasets)] + [("s3://lake", "raw/e.parquet")]
    job_names = [("airflow", f"dag_{j}.task") for j in range(jobs)]
    out = OpenLineageStream()
    for r in range(runs):
        ns, job = rng.choice(job_names)
        run_id = f"0190c1b2-{seed % 10_000:04d}-7000-8000-{r:012d}"
        ins = rng.sample(names, 2)
        outs = [d for d in rng.sample(names, 2) if d not in ins] or [("s3://lake", f"out/{r}")]
        key = f"run:{ns}/{job}".encode()
        for i, (kind, i_ds, o_ds) in enumerate((("START", ins[:1], []), ("COMPLETE", ins, outs))):
            doc = {
                "eventType": kind,
                "eventTime": f"2026-01-01T{r // 3600 % 24:02d}:{r // 60 % 60:02d}:{r % 60:02d}.{i:03d}Z",
                "run": {"runId": run_id},
                "job": {"namespace": ns, "name": job},
                "inputs": [{"namespace": a, "name": b} for a, b in i_ds],
                "outputs": [{"namespace": a, "name": b} for a, b in o_ds],
                "producer": PRODUCER,
                "schemaURL": SCHEMA_URL,
            }
            out.messages.append((key, json.dumps(doc).encode()))
            if r % 10 == 7 and i == 1:
                out.messages.append((key, json.dumps(doc).encode()))  # the producer retried
        if r % 5 == 2:
            out.messages.append((key, NOT_JSON))
            out.malformed += 1
        out.runs.add(run_id)
        out.edges |= {(node_id("DATASET", a, b), node_id("DATASET", c, d), run_id) for a, b in ins for c, d in outs}
    return out
