"""MqttConnection: one paho client kept connected, with backoff, resubscription and
acknowledged publishes.

One thread, `<name>-connection`, owns the life cycle: connect, start paho's network
thread, wait for the connection to end, back off, try again. The connection is
*ready* once the broker acknowledged the subscriptions (SUBACK): paho re-sends the
messages left unacknowledged by the last connection right after CONNACK, so they go
before anything published after `wait_ready`. `publish` may be called from any thread;
its `on_ack(mid)` runs on paho's thread once the broker acknowledged the message.
"""
import logging
import ssl
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import paho.mqtt.client as mqtt

from thingsboard_gateway.mqtt.client import Client
from thingsboard_gateway.runtime.backoff import BackoffPolicy

log = logging.getLogger(__name__)

AckCallback = Callable[[int], None]


def _noop(mid):
    pass


def tls_context(ca_cert=None, cert=None, private_key=None, check_hostname=True):
    # type: (Optional[str], Optional[str], Optional[str], bool) -> ssl.SSLContext
    """A client TLS context that verifies the server against `ca_cert` (and host name)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_cert)
    context.check_hostname = check_hostname
    if cert:
        context.load_cert_chain(cert, private_key)
    return context


PROTOCOLS = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}


def make_client(client_id, protocol=4, clean_session=True, username=None, password=None, tls=None,
                max_inflight=100, manual_ack=False):
    # type: (str, int, bool, Optional[str], Optional[str], Any, int, bool) -> mqtt.Client
    """The one place a paho client is built, for the platform and for MQTT connectors:
    callback API 2, no automatic reconnect (MqttConnection reconnects with backoff).
    protocol: 3 (3.1), 4 (3.1.1) or 5; tls: an ssl.SSLContext or None."""
    kwargs = {"client_id": client_id, "protocol": PROTOCOLS[protocol], "reconnect_on_failure": False,
              "manual_ack": manual_ack}  # type: Dict[str, Any]
    if protocol != 5:
        kwargs["clean_session"] = clean_session
    client = Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
    if username is not None or password is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    client.max_inflight_messages_set(max_inflight)
    return client


def failure_hint(reason):
    # type: (Any) -> str
    text = str(reason)
    lowered = text.lower()
    if "not authori" in lowered or "bad user" in lowered or "password" in lowered:
        return text + " (check the access token / credentials)"
    return text


class MqttConnection(object):
    """Keeps `client` (a Client from make_client, reconnect_on_failure=False)
    connected to host:port.

    subscriptions: [(topic filter, qos)] subscribed after every connect.
    on_message(message): every incoming message, on paho's thread.
    on_ready(): after each connect once subscribed, on paho's thread.
    on_lost(): when a connection ends, on paho's thread.
    wait(seconds) -> bool: how the thread waits between attempts (True = stop).
    handshake_timeout: seconds from the TCP connect to ready (CONNACK, then SUBACK); a
    connection not ready by then is dropped and tried again with backoff (a link that
    swallows packets while it stays open would otherwise hold it until paho's keepalive).
    """

    def __init__(self, name, client, host, port, keepalive=60, subscriptions=(), on_message=None,
                 on_ready=None, backoff=None, wait=None, clock=time.monotonic, connect_args=None, on_lost=None,
                 handshake_timeout=30.0):
        self.name = name
        self._client = client
        self._host = host
        self._port = port
        self._keepalive = keepalive
        self._connect_args = connect_args or {}  # e.g. clean_start, properties (MQTT 5)
        self.subscriptions = list(subscriptions)  # type: List[Tuple[str, int]]
        self._on_message_cb = on_message
        self._on_ready_cb = on_ready
        self._on_lost_cb = on_lost
        self._handshake_timeout = handshake_timeout
        self.backoff = backoff or BackoffPolicy(clock=clock)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._wait = wait or self._stop.wait
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._pending = {}  # type: Dict[int, AckCallback]
        self._early = set()  # type: Set[int]
        self._subscribe_mid = None  # type: Optional[int]
        self._thread = None  # type: Optional[threading.Thread]
        self.attempts = 0
        self.last_error = None  # type: Optional[str]
        self.refused_hint = None  # type: Optional[str]  added to a "not authorized" refusal's line
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe

    @property
    def address(self):
        return "%s:%d" % (self._host, self._port)

    @property
    def client(self):
        return self._client

    # -- life cycle ---------------------------------------------------------------------
    def start(self):
        """Start connecting in the background; returns at once."""
        self._thread = threading.Thread(target=self._run, name=self.name + "-connection")
        self._thread.start()

    def stop(self, timeout=5.0):
        """Disconnect and join the connection thread (at most `timeout` s)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_connected(self):
        return self._ready.is_set()

    def wait_connected(self, timeout=None):
        # type: (Optional[float]) -> bool
        """Block until ready (True) or `timeout` s passed (False)."""
        return self._ready.wait(timeout)

    def _run(self):
        while not self._stop.is_set():
            self.attempts += 1
            self._wake.clear()
            if self._connect_once():
                self._await_end()
            self._ready.clear()
            self._shutdown_loop()
            if self._stop.is_set():
                break
            delay = self.backoff.next_delay()
            log.warning("%s %s: %s; attempt %d failed or ended, next attempt in %.1f s", self.name, self.address,
                        self.last_error or "connection lost", self.attempts, delay)
            if self._wait(delay):
                break
        self._shutdown_loop()
        self._release()
        log.info("%s connection thread stopped", self.name)

    def _await_end(self):
        """Wait until the connection ends (or stop); give up on one that is not ready
        within the handshake timeout."""
        if self._wake.wait(self._handshake_timeout):
            return
        if not self._ready.is_set():
            self.last_error = "no CONNACK/SUBACK within %.0f s" % self._handshake_timeout
            return
        self._wake.wait()

    def _release(self):
        """Close every socket the paho client holds. paho closes its wake-up socket pair
        only when the client is garbage-collected, and our callbacks make a reference
        cycle with it, so without this each stopped connection (a connector restart)
        kept two file descriptors until a full GC: the soak benchmark saw the count grow
        with every restart."""
        client = self._client
        for name in ("on_connect", "on_disconnect", "on_message", "on_publish", "on_subscribe"):
            setattr(client, name, None)
        reset = getattr(client, "_reset_sockets", None)  # paho 1.5-2.x; private, hence the guard
        if reset is not None:
            try:
                reset()
            except Exception:  # already closed
                log.debug("%s: closing the client's sockets failed", self.name, exc_info=True)

    def _connect_once(self):
        # type: () -> bool
        try:
            self._client.connect(self._host, self._port, self._keepalive, **self._connect_args)
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
        except Exception:  # nothing documented is raised; never let shutdown fail
            log.debug("disconnect failed", exc_info=True)
        self._client.loop_stop()

    # -- paho callbacks (paho's thread) -----------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.last_error = "connection refused: %s" % failure_hint(reason_code)
            if self.refused_hint and "not authori" in str(reason_code).lower():
                self.last_error += "; " + self.refused_hint
            self._wake.set()
            return
        self.last_error = None
        self.backoff.connected()
        log.info("%s connected to %s", self.name, self.address)
        if not self.subscriptions:
            self._set_ready()
            return
        _, self._subscribe_mid = client.subscribe(self.subscriptions)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if mid != self._subscribe_mid:
            return
        failed = [topic for (topic, _), code in zip(self.subscriptions, reason_codes) if code.is_failure]
        if failed:
            log.warning("%s: the broker refused subscriptions to %s", self.name, ", ".join(failed))
        self._set_ready()

    def _set_ready(self):
        if self._on_ready_cb is not None:  # before anyone waiting for readiness goes on
            try:
                self._on_ready_cb()
            except Exception:
                log.exception("%s: on_ready handler failed", self.name)
        self._ready.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self._ready.is_set():
            self.last_error = "connection lost (%s)" % reason_code
        self._ready.clear()
        if self._on_lost_cb is not None:
            try:
                self._on_lost_cb()
            except Exception:
                log.exception("%s: on_lost handler failed", self.name)
        self._wake.set()

    def _on_message(self, client, userdata, message):
        if self._on_message_cb is None:
            return
        try:
            self._on_message_cb(message)
        except Exception:
            log.exception("%s: handling a message on %s failed", self.name, message.topic)

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            callback = self._pending.pop(mid, None)
            if callback is None:
                self._early.add(mid)
                return
        callback(mid)

    # -- publishing -------------------------------------------------------------------
    def reconnect(self):
        """Drop the connection now; the connection thread connects again (backing off)
        and paho re-sends what was not acknowledged."""
        self.last_error = "reconnect requested"
        try:
            self._client.disconnect()
        except Exception:
            log.debug("disconnect failed", exc_info=True)
        self._wake.set()

    def ack(self, acks):
        # type: (List[Tuple[int, int]]) -> None
        """Acknowledge received messages, in order: [(mid, qos)] (clients made with
        manual_ack=True by make_client; QoS 0 ones need nothing)."""
        self._client.ack_many(acks)

    def subscribe(self, topic, qos=1):
        # type: (str, int) -> None
        """An extra subscription now (not renewed after a reconnect)."""
        self._client.subscribe(topic, qos)

    def unsubscribe(self, topic):
        # type: (str) -> None
        self._client.unsubscribe(topic)

    def publish(self, topic, payload, qos=1, on_ack=None, retain=False):
        # type: (str, Any, int, Optional[AckCallback], bool) -> int
        """Queue a message; `on_ack(mid)` runs once the broker acknowledged it.

        Thread-safe. While disconnected paho keeps QoS 1 messages and sends them after
        the reconnect. Returns the message id.
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
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
