"""Imports every module that declares Marquez routes (upriver.http.routes imports this once its decorators
exist)."""

from __future__ import annotations
