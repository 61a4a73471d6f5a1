"""`python -m upriver` runs the CLI (the local stack starts its worker this way)."""

from upriver.cli import main

raise SystemExit(main())
