"""Shared by converters: the safe expression engine, type casting, topic expressions."""
