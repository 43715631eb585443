"""Request connector: polls HTTP(S) endpoints (upstream request.json)."""
