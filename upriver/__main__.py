"""`python -m upriver` runs the CLI (the local stack starts its worker this way)."""

from upriver.cli.main import main

raise SystemExit(main())
