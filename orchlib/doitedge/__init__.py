"""The doit-facing edge: commands, loader, runner, reporter; the only layer that imports doit."""
