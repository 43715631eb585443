"""Test helpers: real Mosquitto brokers, the platform double, gateway processes."""
