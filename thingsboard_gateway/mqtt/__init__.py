"""A reconnecting paho-mqtt connection, shared by the platform client and the MQTT connector."""
