"""The MQTT connection to the platform: security from `thingsboard.security`, reconnect
with backoff, the Gateway API subscriptions, acknowledged publishes (mqtt/connection.py).
"""
import logging
import time
import uuid
from typing import Any, Callable, Dict, Optional

import paho.mqtt.client as mqtt

from thingsboard_gateway.mqtt.connection import MqttConnection, make_client, tls_context
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.platform.topics import SUBSCRIPTIONS

log = logging.getLogger(__name__)


def backoff_from_config(reconnect, clock=time.monotonic, rng=None):
    # type: (Dict[str, Any], Callable[[], float], Any) -> BackoffPolicy
    """The BackoffPolicy for a `thingsboard.reconnect` section (milliseconds in config)."""
    multiplier = reconnect["backoffMultiplier"] if reconnect.get("enabled", True) else 1.0
    return BackoffPolicy(min_delay=reconnect["minDelay"] / 1000.0, max_delay=reconnect["maxDelay"] / 1000.0,
                         multiplier=multiplier, jitter=reconnect["jitter"], clock=clock, rng=rng)


def platform_client(security, max_inflight=100):
    # type: (Dict[str, Any], int) -> mqtt.Client
    """A paho client set up for a `thingsboard.security` section."""
    kind = security["type"]
    username = password = tls = None  # type: Any
    if kind in ("accessToken", "tlsAccessToken"):
        username = security["accessToken"]
    elif kind == "usernamePassword":
        username, password = security.get("username") or None, security.get("password") or None
    if kind in ("tls", "tlsPrivateKey", "tlsAccessToken"):
        tls = tls_context(security["caCert"], security.get("cert"), security.get("privateKey"),
                          security.get("checkServerHostname", True))
    return make_client(security.get("clientId") or "tb-gateway-" + uuid.uuid4().hex[:12], username=username,
                       password=password, tls=tls, max_inflight=max_inflight)


class PlatformClient(MqttConnection):
    """A reconnecting MQTT client for the ThingsBoard Gateway API.

    thingsboard: the validated `thingsboard` config section.
    on_message(topic, payload_bytes): every incoming message, on paho's thread.
    on_connected(): after each successful connect and subscribe, on paho's thread.
    """

    def __init__(self, thingsboard, on_message, on_connected=None, clock=time.monotonic, wait=None,
                 backoff=None):
        self._config = thingsboard
        qos = thingsboard["qos"]
        super(PlatformClient, self).__init__(
            "platform", platform_client(thingsboard["security"]), thingsboard["host"], thingsboard["port"],
            thingsboard["keepalive"], [(topic, qos) for topic in SUBSCRIPTIONS],
            on_message=lambda message: on_message(message.topic, message.payload), on_ready=on_connected,
            backoff=backoff or backoff_from_config(thingsboard["reconnect"], clock), wait=wait, clock=clock)

    def publish(self, topic, payload, qos=None, on_ack=None, retain=False):
        # type: (str, Any, Optional[int], Any, bool) -> int
        return super(PlatformClient, self).publish(topic, payload, self._config["qos"] if qos is None else qos,
                                                   on_ack, retain)
