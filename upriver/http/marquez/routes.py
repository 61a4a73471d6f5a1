"""Imports every module that declares Marquez routes (upriver.http.routes imports this once its decorators
exist)."""

from __future__ import annotations

import upriver.http.marquez.datasets
import upriver.http.marquez.events
import upriver.http.marquez.jobs
import upriver.http.marquez.lineage
import upriver.http.marquez.open_search
import upriver.http.marquez.tags  # noqa: F401
