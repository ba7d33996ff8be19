"""Queue tasks of the PassKit domain (APNs pushes)."""
