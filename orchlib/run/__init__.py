"""The run layer: attempts, checks, adoption, events' consumers, agents and their output."""
