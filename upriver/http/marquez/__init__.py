"""The Marquez v1 API on Upriver's read side: Marquez's paths, JSON shapes, paging and error bodies, so
Marquez's web UI, the `marquez-python` client and dashboards built on Marquez's REST API work unchanged
(docs/marquez.md). `graph.py` shapes lineage graphs; the other modules declare routes with
`upriver.http.routes`' decorators (`marquez=True`) and are imported by `routes.py` below.
"""
