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
from thingsboard_gateway.platform.topics import OTA_ERRORS, SUBSCRIPTIONS, SW_RESPONSES

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
    on_lost(): when a connection ends, on paho's thread.
    A connect not answered (CONNACK, SUBACK) within publishAckTimeoutMs is tried again.
    """

    def __init__(self, thingsboard, on_message, on_connected=None, clock=time.monotonic, wait=None,
                 backoff=None, on_lost=None):
        self._config = thingsboard
        qos = thingsboard["qos"]
        topics = list(SUBSCRIPTIONS)
        if (thingsboard.get("softwareUpdates") or {}).get("enabled"):
            topics += [SW_RESPONSES, OTA_ERRORS]  # only then: nothing else of OTA is asked for
        super(PlatformClient, self).__init__(
            "platform", platform_client(thingsboard["security"]), thingsboard["host"], thingsboard["port"],
            thingsboard["keepalive"], [(topic, qos) for topic in topics],
            on_message=lambda message: on_message(message.topic, message.payload), on_ready=on_connected,
            backoff=backoff or backoff_from_config(thingsboard["reconnect"], clock), wait=wait, clock=clock,
            on_lost=on_lost, handshake_timeout=thingsboard.get("publishAckTimeoutMs", 30000) / 1000.0)

    def publish(self, topic, payload, qos=None, on_ack=None, retain=False):
        # type: (str, Any, Optional[int], Any, bool) -> int
        return super(PlatformClient, self).publish(topic, payload, self._config["qos"] if qos is None else qos,
                                                   on_ack, retain)


def try_platform(thingsboard, timeout):
    # type: (Dict[str, Any], float) -> Optional[str]
    """Connect once with a `thingsboard` section's host, port and security, beside the
    running connection (another client id), and disconnect: None when the platform
    accepted it within `timeout` s, else why not. Blocks up to `timeout`."""
    import threading
    security = dict(thingsboard["security"])
    security["clientId"] = (security.get("clientId") or "tb-gateway") + "-trial-" + uuid.uuid4().hex[:6]
    outcome = []  # type: list
    done = threading.Event()
    try:
        client = platform_client(security)
    except (OSError, ValueError) as e:  # a certificate that cannot be read
        return "cannot set up the connection: %s" % e

    def on_connect(client, userdata, flags, reason_code, properties):
        outcome.append(None if not reason_code.is_failure else "connection refused: %s" % reason_code)
        done.set()
    def on_connect_fail(client, userdata):
        outcome.append("cannot connect to %s:%s (refused or unreachable)" % (thingsboard["host"], thingsboard["port"]))
        done.set()
    client.on_connect = on_connect
    client.on_connect_fail = on_connect_fail
    try:
        client.connect_async(thingsboard["host"], thingsboard["port"], thingsboard.get("keepalive", 60))
        client.loop_start()
        if not done.wait(timeout):
            return "no connection to %s:%s within %.0f s" % (thingsboard["host"], thingsboard["port"], timeout)
        return outcome[0]
    except (OSError, ValueError) as e:
        return "network error: %s" % e
    finally:
        try:
            client.disconnect()
        except Exception:  # nothing documented is raised; the trial must never fail its caller
            log.debug("trial disconnect failed", exc_info=True)
        client.loop_stop()
