"""The run layer: one task's attempts, checks, adoption, worktrees, prompts, pauses and spend."""
