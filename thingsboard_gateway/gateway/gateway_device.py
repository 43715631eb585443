"""The gateway's own traffic on the platform, apart from the devices' data (which the
sender delivers from storage): announcements of child devices, replies to RPCs, the
gateway device's attributes and telemetry (statistics, logs), and the session limits.

Everything here is published at once, outside storage; it uses up rate-limit tokens
(its own, the gateway device's limits, for v1/devices/me/*; the sender's for
v1/gateway/*) so that the totals stay inside the platform's limits. Management,
statistics, RPC routing and ingest publish through this object, never through the client.
"""
import json
import logging
import threading
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway.platform import limits as traffic
from thingsboard_gateway.platform import topics
from thingsboard_gateway.platform.limits import TrafficLimits
from thingsboard_gateway.platform.names import DeviceNames

log = logging.getLogger(__name__)

ECHO_GRACE_SECONDS = 1.0
DEVICES_PER_ATTRIBUTES_MESSAGE = 50  # connectorName/connectorType of many devices in one message


def dumps(value):
    # type: (Any) -> bytes
    return json.dumps(value, separators=(",", ":")).encode()


class GatewayDevice(object):
    """client: publish(topic, payload), is_connected(). sender: consume(), set_limits(),
    wait_for_limits(), shorten_limits_wait(), release_limits(). thingsboard: the
    validated `thingsboard` section. Thread-safe."""

    def __init__(self, client, sender, thingsboard):
        # type: (Any, Any, Dict[str, Any]) -> None
        self._client = client
        self._sender = sender
        self._tb = thingsboard
        self._limits = TrafficLimits.combine(traffic.configured(thingsboard, "gateway"))
        self._lock = threading.Lock()
        self.session_limits = None  # type: Optional[Dict[str, Any]]  the platform's last answer
        self.names = DeviceNames()  # renamed devices (the service shares the registry's)
        # Set in the connect callback before the known devices are announced, so that a
        # device first seen meanwhile (before the connection counts as ready) is announced
        # too; cleared when the connection is lost.
        self._session_opening = False

    def connected(self):
        # type: () -> bool
        return self._client.is_connected()

    def publish(self, topic, payload, on_ack=None):
        # type: (str, bytes, Optional[Callable[[int], None]]) -> Any
        """Publish now (QoS as configured), counting it against the rate limits."""
        if topic.startswith("v1/devices/me/"):
            with self._lock:
                self._limits.take(topic == topics.ME_TELEMETRY, 1)
        else:
            self._sender.consume(False, 0)
        return self._client.publish(topic, payload, on_ack=on_ack)

    # -- the gateway device -------------------------------------------------------------
    def publish_attributes(self, values):
        # type: (Dict[str, Any]) -> None
        """Client attributes of the gateway device (when connected)."""
        if self.connected():
            self.publish(topics.ME_ATTRIBUTES, dumps(values))

    def publish_telemetry(self, values, on_ack=None):
        # type: (Any, Optional[Callable[[int], None]]) -> None
        """Telemetry of the gateway device: {"ts", "values"}, or a list of them (when connected);
        on_ack(mid) once the platform acknowledged it."""
        if self.connected():
            self.publish(topics.ME_TELEMETRY, dumps(values), on_ack)

    def request_attributes(self, request_id, keys):
        # type: (int, List[str]) -> None
        """Ask for the gateway device's shared attributes; the answer comes as an update."""
        if self.connected():
            self.publish(topics.ME_ATTRIBUTES_REQUEST + str(request_id), dumps({"sharedKeys": ",".join(keys)}))

    def reply(self, request_id, content):
        # type: (Any, Any) -> None
        """Answer an RPC to the gateway device."""
        self.publish(topics.ME_RPC_RESPONSE + str(request_id), dumps(content))

    # -- child devices --------------------------------------------------------------------
    def announce(self, devices, now=False):
        # type: (List[Any], bool) -> None
        """Child devices are connected: [(device, device type, connector name, connector
        type)]. Each is announced, then their client attributes `connectorName` and
        `connectorType` follow, many devices a message (ThingsBoard's gateway pages sort
        devices into their connectors' tabs by them). When connected; `now`: in the
        connect callback, before the connection counts as ready."""
        if not (now or self._session_opening or self.connected()):
            return
        platform = self.names.platform
        described = {}  # type: Dict[str, Dict[str, str]]
        for device, device_type, connector_name, connector_type in devices:
            name = platform(device)
            self.publish(topics.CONNECT, dumps({"device": name, "type": device_type or "default"}))
            if connector_name:
                described[name] = {"connectorName": connector_name, "connectorType": connector_type or ""}
            if len(described) >= DEVICES_PER_ATTRIBUTES_MESSAGE:
                self.publish(topics.ATTRIBUTES, dumps(described))
                described = {}
        if described:
            self.publish(topics.ATTRIBUTES, dumps(described))

    def session_opening(self):
        """The connect callback: announcements count from now (Ingest.announce_all)."""
        self._session_opening = True

    def connection_lost(self):
        self._session_opening = False

    def disconnect(self, device):
        # type: (str) -> None
        if self.connected():
            self.publish(topics.DISCONNECT, dumps({"device": self.names.platform(device)}))

    # -- session limits (paho's thread) -------------------------------------------------
    def ask_session_limits(self, request_platform):
        # type: (Callable[..., Any]) -> None
        """After a connect: hold delivery until the platform's getSessionLimits answer
        (at most sessionLimitsTimeoutMs); request_platform is the router's."""
        timeout = self._tb["sessionLimitsTimeoutMs"] / 1000.0
        if timeout > 0:
            self._sender.wait_for_limits(timeout)
            request_platform("getSessionLimits", {"timeout": int(timeout * 1000)}, self.on_session_limits)

    def on_own_request_echoed(self, method):
        """A plain MQTT broker stands in for the platform: an answer to getSessionLimits
        comes soon or never, so wait at most a second more for it."""
        if method == "getSessionLimits":
            self._sender.shorten_limits_wait(ECHO_GRACE_SECONDS)

    def on_session_limits(self, answer):
        """The platform's getSessionLimits answer (None: a plain broker)."""
        tb = self._tb
        if not isinstance(answer, dict) or ("rateLimits" not in answer and "gatewayRateLimits" not in answer):
            log.info("No session limits from the platform (%s); using the configured limits",
                     "a plain MQTT broker" if answer is None else "answer: %.100s" % (answer,))
            self._sender.release_limits()
            return
        self.session_limits = answer
        devices = TrafficLimits.combine(traffic.configured(tb, "devices"), traffic.from_server(answer, "devices"))
        own = TrafficLimits.combine(traffic.configured(tb, "gateway"), traffic.from_server(answer, "gateway"))
        with self._lock:
            self._limits = own.carry(self._limits)
        max_payload = tb["maxPayloadSizeBytes"]
        if isinstance(answer.get("maxPayloadSize"), int) and answer["maxPayloadSize"] > 0:
            max_payload = min(max_payload, int(answer["maxPayloadSize"] * traffic.SERVER_SHARE))
        max_inflight = tb["maxInflightMessages"]
        if isinstance(answer.get("maxInflightMessages"), int) and answer["maxInflightMessages"] > 0:
            max_inflight = min(max_inflight, max(1, int(answer["maxInflightMessages"] * traffic.SERVER_SHARE)))
        log.info("Session limits from the platform applied: max payload %d bytes, %d messages in flight, "
                 "device traffic %s", max_payload, max_inflight, answer.get("gatewayRateLimits"))
        self._sender.set_limits(devices, max_payload, max_inflight)
