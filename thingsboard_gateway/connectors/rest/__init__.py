"""REST connector: an HTTP server devices post to (upstream rest.json)."""
