"""``python -m dse.cli``: the command line."""

from dse.cli import main

raise SystemExit(main())
