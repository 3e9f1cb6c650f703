"""`python -m orchlib`."""

from orchlib.cli import main

raise SystemExit(main())
