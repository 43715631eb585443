"""The ThingsBoard side: MQTT client, Gateway API topics and payloads, backoff, rate limits, sender."""
