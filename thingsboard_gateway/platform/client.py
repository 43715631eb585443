"""The MQTT connection to the platform: security, reconnect with backoff, acked publishes.

One thread, `platform-connection`, owns the connection life cycle: it connects, starts
paho's network thread, waits for the connection to end, backs off and tries again.
`publish` may be called from any thread; its `on_ack` callback runs on paho's thread
when the platform acknowledged the message (PUBACK for QoS 1). Messages not yet
acknowledged when a connection drops are re-sent by paho after the reconnect.
"""
import logging
import ssl
import threading
import time
import uuid
from typing import Any, Callable, Dict, Optional, Set

import paho.mqtt.client as mqtt

from thingsboard_gateway.platform.backoff import BackoffPolicy
from thingsboard_gateway.platform.topics import SUBSCRIPTIONS

log = logging.getLogger(__name__)

AckCallback = Callable[[int], None]


def _noop(mid):
    pass


def backoff_from_config(reconnect, clock=time.monotonic, rng=None):
    # type: (Dict[str, Any], Callable[[], float], Any) -> BackoffPolicy
    """The BackoffPolicy for a `thingsboard.reconnect` section (milliseconds in config)."""
    multiplier = reconnect["backoffMultiplier"] if reconnect.get("enabled", True) else 1.0
    return BackoffPolicy(min_delay=reconnect["minDelay"] / 1000.0, max_delay=reconnect["maxDelay"] / 1000.0,
                         multiplier=multiplier, jitter=reconnect["jitter"], clock=clock, rng=rng)


def tls_context(security):
    # type: (Dict[str, Any]) -> ssl.SSLContext
    """A client TLS context that verifies the server against `caCert` (and host name)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=security["caCert"])
    context.check_hostname = security.get("checkServerHostname", True)
    if security.get("cert"):
        context.load_cert_chain(security["cert"], security.get("privateKey"))
    return context


def _failure_hint(reason):
    text = str(reason)
    lowered = text.lower()
    if "not authori" in lowered or "bad user" in lowered or "password" in lowered:
        return text + " (check the access token / credentials)"
    return text


class PlatformClient(object):
    """A reconnecting MQTT client for the ThingsBoard Gateway API.

    thingsboard: the validated `thingsboard` config section.
    on_message(topic, payload_bytes): called on paho's thread for every incoming message.
    on_connected(): called on paho's thread after each successful connect (and subscribe).
    wait(seconds) -> bool: how the connection thread waits between attempts (returns
    True to stop); defaults to waiting on the stop event, tests inject a fake.
    """

    def __init__(self, thingsboard, on_message, on_connected=None, clock=time.monotonic, wait=None,
                 backoff=None):
        self._config = thingsboard
        self._security = thingsboard["security"]
        self._on_message_cb = on_message
        self._on_connected_cb = on_connected
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._wait = wait or self._stop.wait
        self.backoff = backoff or backoff_from_config(thingsboard["reconnect"], clock)
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._pending = {}  # type: Dict[int, AckCallback]
        self._early = set()  # type: Set[int]
        self._thread = None  # type: Optional[threading.Thread]
        self._subscribe_mid = None  # type: Optional[int]
        self.attempts = 0
        self.last_error = None  # type: Optional[str]
        self._client = self._make_client()

    # -- set-up -------------------------------------------------------------------
    def _make_client(self):
        security = self._security
        kind = security["type"]
        client_id = security.get("clientId") or "tb-gateway-" + uuid.uuid4().hex[:12]
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                             protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        if kind in ("accessToken", "tlsAccessToken"):
            client.username_pw_set(security["accessToken"])
        elif kind == "usernamePassword":
            client.username_pw_set(security.get("username") or None, security.get("password") or None)
        if kind in ("tls", "tlsAccessToken"):
            client.tls_set_context(tls_context(security))
        client.max_inflight_messages_set(self._config.get("maxInflightMessages", 100))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    @property
    def address(self):
        return "%s:%d" % (self._config["host"], self._config["port"])

    # -- life cycle ---------------------------------------------------------------
    def start(self):
        """Start connecting in the background; returns at once."""
        self._thread = threading.Thread(target=self._run, name="platform-connection")
        self._thread.start()

    def stop(self, timeout=5.0):
        """Disconnect and join the connection thread (at most `timeout` s)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_connected(self):
        return self._connected.is_set()

    def wait_connected(self, timeout=None):
        # type: (Optional[float]) -> bool
        """Block until connected (True) or `timeout` s passed (False)."""
        return self._connected.wait(timeout)

    def _run(self):
        while not self._stop.is_set():
            self.attempts += 1
            self._wake.clear()
            if self._connect_once():
                self._wake.wait()
            self._connected.clear()
            self._shutdown_loop()
            if self._stop.is_set():
                break
            delay = self.backoff.next_delay()
            log.warning("Platform %s: %s; attempt %d failed or ended, next attempt in %.1f s",
                        self.address, self.last_error or "connection lost", self.attempts, delay)
            if self._wait(delay):
                break
        self._shutdown_loop()
        log.info("Platform connection thread stopped")

    def _connect_once(self):
        # type: () -> bool
        try:
            self._client.connect(self._config["host"], self._config["port"], self._config["keepalive"])
        except ssl.SSLError as e:
            self.last_error = "TLS handshake failed: %s" % e
            return False
        except OSError as e:
            self.last_error = "network error: %s" % (e.strerror or e)
            return False
        except ValueError as e:
            self.last_error = "cannot connect: %s" % e
            return False
        self._client.loop_start()
        return True

    def _shutdown_loop(self):
        try:
            self._client.disconnect()
        except Exception:  # paho raises nothing documented here; never let shutdown fail
            log.debug("disconnect failed", exc_info=True)
        self._client.loop_stop()

    # -- paho callbacks (paho's thread) ----------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.last_error = "connection refused by the platform: %s" % _failure_hint(reason_code)
            self._wake.set()
            return
        self.last_error = None
        self.backoff.connected()
        log.info("Connected to platform %s", self.address)
        qos = self._config["qos"]
        _, self._subscribe_mid = client.subscribe([(topic, qos) for topic in SUBSCRIPTIONS])
        # Ready only at SUBACK: paho re-sends the messages left unacknowledged by the last
        # connection right after this callback, and they must go before any new data.

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if mid != self._subscribe_mid:
            return
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            log.warning("Platform refused some subscriptions: %s", ", ".join(failed))
        self._connected.set()
        if self._on_connected_cb is not None:
            try:
                self._on_connected_cb()
            except Exception:
                log.exception("on_connected handler failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self._connected.is_set():
            self.last_error = "connection lost (%s)" % reason_code
        self._connected.clear()
        self._wake.set()

    def _on_message(self, client, userdata, message):
        try:
            self._on_message_cb(message.topic, message.payload)
        except Exception:
            log.exception("Handling a platform message on %s failed", message.topic)

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            callback = self._pending.pop(mid, None)
            if callback is None:
                self._early.add(mid)
                return
        callback(mid)

    # -- publishing ------------------------------------------------------------------
    def publish(self, topic, payload, qos=None, on_ack=None):
        # type: (str, Any, Optional[int], Optional[AckCallback]) -> int
        """Queue a message; `on_ack(mid)` runs once the platform acknowledged it.

        Thread-safe. While disconnected paho keeps QoS 1 messages and sends them
        after the reconnect. Returns the message id.
        """
        qos = self._config["qos"] if qos is None else qos
        info = self._client.publish(topic, payload, qos=qos)
        if qos == 0 and info.rc != mqtt.MQTT_ERR_SUCCESS:
            return info.mid  # not kept by paho: no acknowledgement will come
        callback = on_ack or _noop
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = callback
                return info.mid
        callback(info.mid)
        return info.mid
