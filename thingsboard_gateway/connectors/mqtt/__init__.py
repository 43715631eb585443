"""The MQTT connector: subscribes to a device broker, converts, relays to the platform."""
