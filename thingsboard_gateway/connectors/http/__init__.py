"""HTTP parts shared by the REST and request connectors (standard library only)."""
