"""Marquez's `GET /api/v1/lineage?nodeId=&depth=` (OpenLineageResource.getLineage): the lineage graph of a
dataset or job walked through jobs in both directions, as Marquez walks it (upriver/http/marquez/graph.py,
upriver/readside/jobgraph.py). `POST /api/v1/lineage` (OpenLineage ingest) is declared in upriver/http/routes.py.
"""

from __future__ import annotations

from upriver.http import routes
from upriver.http.api import Answer, ApiError, MarquezError
from upriver.http.marquez import graph
from upriver.http.marquez.params import JAVA_INT_MAX, required
from upriver.http.spec import Param, Query
from upriver.readside.lineage import LineageReader

NODE_ID = Param("nodeId", required=True, example="dataset:warehouse:orders",
                description="dataset:<namespace>:<name> or job:<namespace>:<name> (Marquez's NodeId; an Upriver "
                            "node id is taken too)")  # fmt: skip
DEPTH = Param("depth", "integer", "job levels walked from the node's job, both directions (Marquez's depth; "
              "below 1: that job alone)", default=20, minimum=-JAVA_INT_MAX - 1, maximum=JAVA_INT_MAX)  # fmt: skip


@routes.get("/api/v1/lineage", "Marquez: the lineage graph around a dataset or job, walked through jobs",
            NODE_ID, DEPTH, routes.AS_OF, marquez=True,
            answer="Marquez's LineageGraph: JOB and DATASET vertices with their inEdges and outEdges")  # fmt: skip
def marquez_lineage(reader: LineageReader, q: Query) -> Answer:
    node_id = q.text("nodeId")
    if not node_id:
        raise required("nodeId")
    try:
        depth = q.integer("depth")
    except ApiError as exc:
        raise MarquezError(400, f"query param {exc}") from None
    return graph.lineage(reader, node_id, depth, q.time("as_of"))
