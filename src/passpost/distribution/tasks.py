"""Queue tasks of the distribution domain (fan-out and sends)."""
