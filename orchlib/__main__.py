"""`python -m orchlib`."""

from orchlib.doitedge import quietexit

quietexit.install()  # before doit is imported: a Ctrl-C from here on exits quietly

from orchlib.doitedge.cli import main  # noqa: E402

raise SystemExit(main())
