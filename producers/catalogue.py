"""The simulator's job catalogue: the jobs of a cycle, each with the edge type its author states per input.

producers/simulator.py draws the random parts (failures, promotions, rollbacks) and turns jobs into events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from schemas.model import ArtifactRef, JobKind


def _facets(**facets: Any) -> str | None:
    return json.dumps(facets, sort_keys=True) if facets else None


def owner(team: str) -> dict[str, Any]:
    return {"owners": [{"name": f"team:{team}", "type": "TEAM"}]}


def ref(kind: str, ns: str, name: str, version: str | None = None, **facets: Any) -> ArtifactRef:
    return ArtifactRef(kind, ns, name, version, _facets(**facets))


@dataclass(frozen=True)
class Job:
    name: str
    namespace: str
    kind: JobKind
    inputs: tuple[ArtifactRef, ...]
    outputs: tuple[ArtifactRef, ...]
    # what each output is to an input, by the input's kind ("*" for the rest), stated by the author
    types: dict[str, str]

    def type_for(self, i: ArtifactRef) -> str:
        return self.types.get(i.kind) or self.types["*"]




def rag_app_jobs(app: str, cycle: int, first: int, n_docs: int, n_chunks: int) -> list[Job]:
    """One cycle of a RAG app: documents `first`.. `first + n_docs`, chunks, embeddings, an append-only index,
    prompt versions, the app's deployment and its answers."""
    ns = f"pipelines.{app}"
    source = ref("DATASET", "confluence", f"{app}-space")
    docs = [ref("DOCUMENT", "kb", f"{app}/doc-{i}") for i in range(first, first + n_docs)]
    jobs = [Job("ingest_docs", ns, JobKind.INGEST, (source,), tuple(docs), {"*": "DERIVED_FROM"})]
    embedder = ref("MODEL", "hub", "text-embedder")
    embeddings = []
    for d in docs:
        chunks = tuple(ref("CHUNK", "kb", f"{d.name}/c{j}") for j in range(n_chunks))
        jobs.append(Job("chunk_doc", ns, JobKind.TRANSFORM, (d,), chunks, {"*": "CHUNKED_FROM"}))
        emb = ref("EMBEDDING", "vectors", d.name)
        embeddings.append(emb)
        jobs.append(Job("embed_doc", ns, JobKind.EMBED, (*chunks, embedder), (emb,), {"*": "EMBEDDED_FROM"}))
    index = ref("VECTOR_INDEX", "vectors", f"{app}-index", f"{cycle + 1}", writeMode={"mode": "APPEND"})
    jobs.append(Job("build_index", ns, JobKind.INDEX, tuple(embeddings), (index,), {"*": "INDEXED_FROM"}))
    prompt_version = f"v{cycle // 3 + 1}"
    prompt = ref("PROMPT", "prompts", f"{app}.answer", prompt_version)
    if cycle % 3 == 0:
        jobs.append(Job("publish_prompt", ns, JobKind.OTHER, (ref("DOCUMENT", "git", f"{app}/prompts/answer.md"),),
                        (prompt,), {"*": "DERIVED_FROM"}))  # fmt: skip
    deployment = ref("DEPLOYMENT", "serving", app, f"{cycle + 1}")
    jobs.append(Job(f"deploy_{app}", ns, JobKind.DEPLOY,
                    (prompt, replace(index, facets=None), ref("MODEL", "hub", "llm-base")), (deployment,),
                    {"PROMPT": "PROMPTED_WITH", "VECTOR_INDEX": "RETRIEVED_FROM", "*": "DEPLOYED_AS"}))  # fmt: skip
    jobs.append(Job(f"answer_{app}", ns, JobKind.GENERATE, (replace(deployment, version=None),),
                    (ref("PREDICTION", "answers", app, f"d{cycle:04d}"),), {"*": "GENERATED_BY"}))  # fmt: skip
    if cycle % 2 == 1:
        jobs.append(Job(f"eval_retrieval_{app}", ns, JobKind.RETRIEVE, (replace(index, facets=None),),
                        (ref("EVALUATION", "evals", f"{app}-retrieval", f"{cycle + 1}"),),
                        {"*": "RETRIEVED_FROM"}))  # fmt: skip
    return jobs
