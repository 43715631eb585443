"""ThingsBoard IoT Gateway: a thread-based daemon relaying field devices to ThingsBoard."""

__version__ = "0.1.0"
