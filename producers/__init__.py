"""Everything that writes lineage into Kafka: the emitter, NDJSON replay and the workload simulator.

Imports only `schemas` (the contract) and third-party libraries, never processors/ or sinks/.
"""
