"""Reproducible benchmarks; each writes its figures to benchmarks/results/*.json."""
