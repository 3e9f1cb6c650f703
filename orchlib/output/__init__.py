"""What a run shows and sends: the console and notifications (bus subscribers)."""
