"""The `upriver` command line (upriver.cli.main)."""
