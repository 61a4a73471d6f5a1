"""Node identity (schemas/identity.py): injective and reversible for every string, and Marquez's nodeId."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import identity
from schemas.identity import IdentityError, NodeRef, node_id, parse, parse_marquez

# arbitrary unicode, with the characters that broke the old grammar made likely
tricky = st.text(alphabet=st.one_of(st.sampled_from("/:#@%.%2F"), st.characters()), max_size=30)
kinds = st.from_regex(identity.KIND, fullmatch=True)


@given(kinds, tricky, tricky, st.none() | tricky)
def test_round_trip(kind: str, namespace: str, name: str, field: str | None) -> None:
    ref = parse(node_id(kind, namespace, name, field))
    assert ref == NodeRef(kind.upper(), namespace, name, field)


@given(kinds, tricky, tricky, st.none() | tricky, kinds, tricky, tricky, st.none() | tricky)
def test_no_collisions(k1: str, n1: str, m1: str, f1: str | None, k2: str, n2: str, m2: str, f2: str | None) -> None:
    if (k1.upper(), n1, m1, f1) != (k2.upper(), n2, m2, f2):
        assert node_id(k1, n1, m1, f1) != node_id(k2, n2, m2, f2)


def test_the_collisions_seen_with_real_names_are_gone() -> None:
    # issue 11: ('s3://bucket', 'a/b.parquet') and ('s3://bucket/a', 'b.parquet') were one node
    assert node_id("DATASET", "s3://bucket", "a/b.parquet") != node_id("DATASET", "s3://bucket/a", "b.parquet")
    dbt = parse(node_id("DATASET", "duckdb:///tmp/x/shop.duckdb", "shop.main_marts.dim_customers"))
    assert (dbt.namespace, dbt.name) == ("duckdb:///tmp/x/shop.duckdb", "shop.main_marts.dim_customers")
    spark = parse(node_id("DATASET", "file:/tmp/warehouse", "/tmp/warehouse/orders"))
    assert (spark.namespace, spark.name) == ("file:/tmp/warehouse", "/tmp/warehouse/orders")
    job = parse(node_id("JOB", "spark://cluster", "etl"))
    assert (job.kind, job.namespace, job.name) == ("JOB", "spark://cluster", "etl")
    assert parse(node_id("DATASET", "postgres://db:5432", "public.t")).namespace == "postgres://db:5432"


def test_plain_names_keep_their_readable_ids() -> None:
    assert node_id("DATASET", "warehouse", "growth.raw_events") == "dataset:warehouse/growth.raw_events"
    assert node_id("DATASET", "warehouse", "t", "col") == "dataset:warehouse/t#col"
    assert node_id("DATASET", "s3://landing", "core/users") == "dataset:s3://landing/core%2Fusers"


@pytest.mark.parametrize("bad", ["", "dataset", "dataset:nons", ":ns/name", "data set:ns/x", "1x:ns/x"])
def test_not_ids_are_refused(bad: str) -> None:
    with pytest.raises(IdentityError):
        parse(bad)


def test_kinds_outside_the_grammar_are_refused() -> None:
    with pytest.raises(IdentityError):
        node_id("da:ta", "ns", "x")


# ---- Marquez (expected values from Marquez's own NodeIdTest and its splitting rule) -----------------


@pytest.mark.parametrize(
    ("value", "ns", "name", "field", "version"),
    [
        ("dataset:namespace:dataset", "namespace", "dataset", None, None),
        ("dataset:s3://bucket:path/to/data", "s3://bucket", "path/to/data", None, None),
        ("dataset:postgres://localhost:5432:public.orders", "postgres://localhost:5432", "public.orders", None, None),
        ("dataset:duckdb:///tmp/x/shop.duckdb:shop.main.orders", "duckdb:///tmp/x/shop.duckdb", "shop.main.orders",
         None, None),
        ("dataset:file:/tmp/warehouse:/tmp/warehouse/orders", "file", "/tmp/warehouse:/tmp/warehouse/orders", None,
         None),
        ("job:namespace:job", "namespace", "job", None, None),
        ("job:spark://cluster:etl", "spark://cluster", "etl", None, None),
        ("datasetField:namespace:dataset:field", "namespace", "dataset", "field", None),
        ("dataset:gs://bucket:a.b#aa3d3d2c-7c54-4d3f-9d3e-1f2a3b4c5d6e", "gs://bucket", "a.b", None,
         "aa3d3d2c-7c54-4d3f-9d3e-1f2a3b4c5d6e"),
    ],
)  # fmt: skip
def test_marquez_node_ids_split_as_marquez_splits_them(
    value: str, ns: str, name: str, field: str | None, version: str | None
) -> None:
    got = parse_marquez(value)
    assert (got.namespace, got.name, got.field, got.version) == (ns, name, field, version)


def test_marquez_candidates_cover_namespaces_marquez_misreads() -> None:
    # Marquez's heuristic reads file:/tmp/w as namespace 'file'; the true split is among the candidates
    cands = identity.marquez_candidates("dataset:file:/tmp/warehouse:/tmp/warehouse/orders")
    assert ("file:/tmp/warehouse", "/tmp/warehouse/orders") in [(c.namespace, c.name) for c in cands]


@given(tricky.filter(lambda s: bool(s) and "#" not in s), tricky.filter(lambda s: bool(s) and "#" not in s))
def test_marquez_ids_we_write_are_read_back_among_the_candidates(ns: str, name: str) -> None:
    value = identity.marquez_id(NodeRef("DATASET", ns, name))
    assert (ns, name) in [(c.namespace, c.name) for c in identity.marquez_candidates(value)]
