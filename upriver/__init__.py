"""Upriver the application: CLI, settings, local stack control, read side and its HTTP API."""
