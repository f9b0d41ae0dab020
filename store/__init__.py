"""The gateway's own state store (contract §7): engines, migrations and repositories."""
