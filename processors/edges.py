"""Derive typed lineage edges from one decoded event. Pure: the caller passes `derived_at`.

Every event that carries both inputs and outputs yields one edge per (input, output) pair, from the
input (upstream) to the output (downstream). The type says what the output is to the input and comes
from the job kind and the output kind (table `EDGE_TYPES`; docs/event-model.md shows it).
"""

from __future__ import annotations

from typing import Any

from schemas.model import node_id

Record = dict[str, Any]

DERIVED_FROM = "DERIVED_FROM"

# (job kind, output kind) -> edge type. Checked first.
EDGE_TYPES: dict[tuple[str, str], str] = {
    ("TRAIN", "MODEL"): "TRAINED_ON",
    ("EVALUATE", "EVALUATION"): "EVALUATED_ON",
    ("DEPLOY", "DEPLOYMENT"): "DEPLOYED_AS",
    ("PREDICT", "PREDICTION"): "PREDICTED_BY",
    ("EMBED", "EMBEDDING"): "EMBEDDED_FROM",
    ("INDEX", "VECTOR_INDEX"): "INDEXED_FROM",
    ("TRANSFORM", "CHUNK"): "CHUNKED_FROM",
    ("RETRIEVE", "CHUNK"): "RETRIEVED_FROM",
    ("RETRIEVE", "DOCUMENT"): "RETRIEVED_FROM",
    ("GENERATE", "PREDICTION"): "GENERATED_BY",
}

# Output kind -> edge type when the job kind says nothing more specific.
OUTPUT_KIND_TYPES: dict[str, str] = {
    "MODEL": "TRAINED_ON",
    "EVALUATION": "EVALUATED_ON",
    "DEPLOYMENT": "DEPLOYED_AS",
    "PREDICTION": "PREDICTED_BY",
    "EMBEDDING": "EMBEDDED_FROM",
    "VECTOR_INDEX": "INDEXED_FROM",
    "CHUNK": "CHUNKED_FROM",
}


def edge_type(job_kind: str, output_kind: str) -> str:
    return EDGE_TYPES.get((job_kind, output_kind)) or OUTPUT_KIND_TYPES.get(output_kind, DERIVED_FROM)


def derive(event: Record, derived_at: int) -> list[Record]:
    """Edge records (Avro `Edge` dict form) for one valid event; empty when a side is missing."""
    inputs = event["inputs"]
    outputs = event["outputs"]
    if not inputs or not outputs:
        return []
    job_kind = event["job_kind"]
    job = f"{event['job_namespace']}/{event['job_name']}"
    run_id = event["run_id"]
    event_id = event["event_id"]
    event_time = event["event_time"]
    srcs = [(node_id(i["kind"], i["namespace"], i["name"]), i["version"]) for i in inputs]
    out: list[Record] = []
    for o in outputs:
        dst = node_id(o["kind"], o["namespace"], o["name"])
        etype = edge_type(job_kind, o["kind"])
        for src, src_version in srcs:
            if src == dst:
                continue  # an artifact rewritten in place is not its own upstream
            out.append(
                {
                    "src": src,
                    "dst": dst,
                    "edge_type": etype,
                    "src_version": src_version,
                    "dst_version": o["version"],
                    "run_id": run_id,
                    "job": job,
                    "event_id": event_id,
                    "event_time": event_time,
                    "derived_at": derived_at,
                }
            )
    return out
