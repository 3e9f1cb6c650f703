"""orchlib: run a plan of work across several projects with coding agents, on doit."""

from __future__ import annotations

__version__ = "0.1.0"
