"""The default topic names, declared once: part of the contract between emitters, worker and sink.

`upriver.settings.Topics` reads each from its environment variable with these defaults; the SDK's Kafka
transport and the worker's configuration default to them; compose/docker-compose.yml's `init-topics`
creates them (tests/unit/test_compose.py checks it against the settings).
"""

from __future__ import annotations

EVENTS = "upriver.events.v1"
EDGES = "upriver.edges.v1"
RUNS = "upriver.runs.v1"
DLQ = "upriver.dlq.v1"
ALERTS = "upriver.alerts.v1"
HEALTH = "upriver.metrics.v1"
DRIFT_LINKS = "upriver.drift-links.v1"
TAGS = "upriver.tags.v1"  # the Marquez tag writes (TagChange), kept forever: the tag_changes table is rebuilt from it
OPENLINEAGE = "openlineage.events"
# The header on an OpenLineage topic message that is the raw copy of an event the HTTP ingest mapped and published
# itself (upriver/http/ingest.py): the sink keeps it as received, the worker does not map it again.
MAPPED_HEADER = "upriver-mapped"
MAPPED_VALUE = b"1"
# The header on an events-topic message the worker mapped from an OpenLineage topic message and sent on to the
# process owning its run ("partition/offset" of that message): its dedup position (processors/lineage/dedup.py).
ORIGIN_HEADER = "upriver-origin"
