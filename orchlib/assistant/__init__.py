"""Serving AI assistants (DESIGN §17): `doit mcp`, a Model Context Protocol server whose tools
reuse the commands' code paths, and `doit skill`, the SKILL.md that teaches an assistant to
plan, run, watch and answer through them."""
