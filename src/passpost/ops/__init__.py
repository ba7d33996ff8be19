"""Operating passpost: backups and secret-key rotation (above the domains: reads their tables)."""
