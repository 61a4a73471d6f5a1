# The two commands of the README: `make demo` and `make test`. Both install what is needed first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
EVENTS ?= 50000
# A Marquez checkout (a clone or a bare repository): the Marquez contract tests read its spec/openapi.yml at test
# time (docs/marquez.md); without one they are skipped, saying why. Default: this workplace's mirror, if present.
MARQUEZ_REPO ?= $(wildcard /work/.mirror/MarquezProject+marquez/repo)
export MARQUEZ_REPO

.PHONY: install prereqs promtool chromium jars demo up test test-full test-fast test-faults test-producers bench bench-faust bench-floor bench-ingest-floor bench-graph bench-health bench-openlineage bench-openlineage-path bench-http bench-marquez bench-peers bench-profile bench-two-workers lint clean postgres

# Java 17 and Maven run the Kafka broker; on a machine without them, install Debian's packages (root).
prereqs:
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	  echo "installing Java and Maven (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven; }

# promtool checks the alert rules and prometheus scrapes the stack in the tests: Debian's package (root).
promtool:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  echo "installing Prometheus and promtool (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

# The browser tests drive Debian's Chromium headless through Playwright (root for apt).
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Chromium (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# Data.Rentgen's store in `make bench-peers` (never in the tests): Debian's PostgreSQL 15 server binaries (root).
postgres:
	@test -x /usr/lib/postgresql/15/bin/initdb || { \
	  echo "installing PostgreSQL 15 (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: prereqs $(STAMP)

# Fetches the broker jars from Maven Central once into .cache/kafka (git-ignored).
jars: install
	$(BIN)/upriver kafka fetch

demo: jars
	$(BIN)/upriver demo

up: jars
	$(BIN)/upriver up

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The suite CI runs (`.ci/run`), with the real dbt-ol and Spark-listener producers (each installed once into
# .cache/producers): everything but the tests marked slow, Airflow and the full fault suite.
test: jars promtool chromium lint
	$(BIN)/pytest -q -m "not producers and not faults and not slow"

# `make test` plus the tests marked slow (Kafka outages of 40 s and of an emit's wait, dbt-ol's second mode, a
# broker restart, the UI's timed 500-node render): the full suite.
test-full: jars promtool chromium lint
	$(BIN)/pytest -q -m "not producers and not faults"

# Apache Airflow with its OpenLineage provider (a large install, kept out of `make test`).
test-producers: jars lint
	$(BIN)/pytest -q -m producers

# The full fault suite (~25 min): SIGKILLs of worker, sink and broker, ClickHouse refusing inserts and losing a
# table, graceful restarts, each run counted against the simulator's truth -> benchmarks/results/faults.json
test-faults: jars lint
	$(BIN)/pytest -q -m faults tests/faults

test-fast: install promtool lint
	$(BIN)/pytest -q -m "not integration"

# e2e bursts + paced run + the ceiling (bare pipeline, Kafka's ProducerPerformance) -> results/e2e.json
bench: jars
	$(BIN)/python -m benchmarks.e2e --events $(EVENTS)

# the e2e workload on 8 partitions, one worker then two in one group -> results/two_workers.json
bench-two-workers: jars
	$(BIN)/python -m benchmarks.two_workers --events $(EVENTS)

bench-faust: jars
	$(BIN)/python benchmarks/faust_send.py

# each part of the pipeline alone (faust's delivery, handling, health, publishing, the bare sink, the OpenLineage
# path), CPU per message, and the events/s they leave for a worker on one core and the stack on two -> results/floor.json
bench-floor: jars
	$(BIN)/python -m benchmarks.floor

# 1M- and 10M-edge graphs from the simulator, query latencies -> benchmarks/results/graph.json (~15 min)
GRAPH_EDGES ?= 1000000 10000000
bench-graph: install
	$(BIN)/python -m benchmarks.graph --edges $(GRAPH_EDGES)

# health processor on vs off through the local stack, and the engine at 1M artifacts -> results/health.json
bench-health: jars
	$(BIN)/python -m benchmarks.health

# OpenLineage HTTP ingest: events/s and request latency at 1/4/16 clients and in batches -> results/openlineage.json
bench-openlineage: jars
	$(BIN)/python -m benchmarks.openlineage_http

# The same ingest on the stdlib server vs aiohttp vs Starlette/uvicorn (no worker, no sink) -> results/http_frameworks.json
# The HTTP ingest's parts alone on a real broker, CPU per event and the events/s they leave -> results/ingest_floor.json
bench-ingest-floor: jars
	$(BIN)/python -m benchmarks.ingest_floor

bench-http: jars
	$(BIN)/pip install -q starlette==1.10.0 uvicorn==0.55.0 httptools==0.9.0
	$(BIN)/python -m benchmarks.http_frameworks

# Marquez's /lineage and /namespaces/{ns}/jobs on Upriver at 1M edges, p50/p95 -> results/marquez_api.json
bench-marquez: install
	$(BIN)/python -m benchmarks.marquez_api --edges 1000000

# The worker's two ways with an OpenLineage Kafka message, in process (handled where read vs sent on through the
# events topic), over bench-peers' stream -> results/experiments/openlineage-path.json (~2 min)
bench-openlineage-path: install
	$(BIN)/python -m benchmarks.openlineage_path

# Upriver beside Data.Rentgen (PyPI data-rentgen, Debian's PostgreSQL 15) on one OpenLineage Kafka stream: consume
# rate, CPU, emit->queryable paced, lineage query p50/p95, every answer checked -> results/peers.json (~6 min); then
# Upriver's burst alone with py-spy (PyPI) on worker and controller -> results/peers_upriver.json (~1.5 min)
bench-peers: jars postgres
	$(BIN)/python -m benchmarks.peers
	$(BIN)/pip install -q py-spy==0.4.3
	$(BIN)/python -m benchmarks.peers --upriver-only --profile

# Where the CPU goes: one e2e burst with py-spy (PyPI) sampling the worker and the controller -> results/profile.json
bench-profile: jars
	$(BIN)/pip install -q py-spy==0.4.3
	$(BIN)/python -m benchmarks.profile_e2e --events $(EVENTS)

clean:
	rm -rf .upriver test-artifacts
