"""Connectors: the public extension API, the built-in registry, one folder per protocol."""
