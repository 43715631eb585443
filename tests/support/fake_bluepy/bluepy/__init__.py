"""A double of bluepy for tests (no Bluetooth adapter here): see btle.py."""
