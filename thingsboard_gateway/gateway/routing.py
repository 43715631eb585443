"""Routing of platform messages: device RPC and attribute updates to the owning connector,
attribute responses to their requesters, the gateway's own RPC methods, and the connector
RPCs of ThingsBoard's connector RPC page (`<connector type>_<method>` to the gateway device).

Devices renamed on the platform (platform/names.py): what comes in for the new name goes
to the connector under the device's own name; what goes out uses the new one.

`handle(topic, payload)` runs on paho's network thread: connector handlers are expected
to hand work to their own thread and return quickly.
"""
import itertools
import json
import logging
import threading
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway.gateway.gateway_device import dumps
from thingsboard_gateway.gateway.gateway_rpc import Then, parsed_params
from thingsboard_gateway.platform import topics
from thingsboard_gateway.platform.names import DeviceNames

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Any]


class Router(object):
    """Dispatches incoming platform messages.

    publish(topic, payload): sends a reply. owner_of(device) -> connector or None.
    gateway_methods: name -> callable(params) returning the JSON-able answer (or a Then).
    connectors_of(type, connector id or None) -> the running connectors an RPC of the
    connector RPC page goes to. names: the DeviceNames of renamed devices.
    """

    def __init__(self, publish, owner_of, gateway_methods, on_echo=None, connectors_of=None, names=None):
        # type: (Publish, Callable[[str], Any], Dict[str, Callable[[Any], Any]], Optional[Callable[[Any], None]], Optional[Callable[[str, Any], List[Any]]], Optional[DeviceNames]) -> None
        self._publish = publish
        self._owner_of = owner_of
        self._methods = gateway_methods
        self._connectors_of = connectors_of or (lambda kind, connector_id: [])
        self.names = names or DeviceNames()
        # (device, request id) of connector RPCs naming a device: their reply goes to the gateway device
        self._connector_calls = {}  # type: Dict[Any, str]
        self._on_echo = on_echo
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._attribute_requests = {}  # type: Dict[int, Callable[[Dict[str, Any]], None]]
        # Attribute requests made while the platform connection was not subscribed: their
        # answer would find no subscription (connectors start before the platform connects).
        self._ready = False
        self._unsent = []  # type: List[str]
        self._platform_requests = {}  # type: Dict[str, Callable[[Any], None]]
        # The gateway device's own shared attributes -> remote configuration (on paho's thread).
        self.on_own_attributes = None  # type: Optional[Callable[[Dict[str, Any]], None]]
        # Software OTA chunks (binary) and the platform's OTA errors (gateway/software_update.py).
        self.on_sw_chunk = None  # type: Optional[Callable[[str, bytes], None]]
        self.on_ota_error = None  # type: Optional[Callable[[bytes], None]]

    def handle(self, topic, payload):
        # type: (str, bytes) -> None
        if topic == topics.OTA_ERRORS:
            if self.on_ota_error is not None:
                self.on_ota_error(payload)
            return
        if topic.startswith(topics.SW_RESPONSE_PREFIX):
            if self.on_sw_chunk is not None:
                self.on_sw_chunk(topic, payload)
            return  # not JSON: a package's bytes
        try:
            content = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            log.warning("Ignoring a message on %s that is not JSON (%d bytes)", topic, len(payload))
            return
        if topic == topics.RPC:
            self._device_rpc(content)
        elif topic == topics.ATTRIBUTES:
            self._attribute_update(content)
        elif topic == topics.ATTRIBUTES_RESPONSE:
            self._attribute_response(content)
        elif topic.startswith(topics.ME_RPC_REQUEST):
            self._gateway_rpc(topic[len(topics.ME_RPC_REQUEST):], content)
        elif topic.startswith(topics.ME_RPC_RESPONSE):
            self._platform_answer(topic[len(topics.ME_RPC_RESPONSE):], content)
        elif topic == topics.ME_ATTRIBUTES:
            self._own_attributes(content)
        elif topic.startswith(topics.ME_ATTRIBUTES_RESPONSE):
            self._own_attributes(content.get("shared") if isinstance(content, dict) else None)
        else:
            log.debug("No route for %s", topic)

    def _own_attributes(self, content):
        """The gateway device's shared attributes (pushed, or the answer to a request)."""
        if not isinstance(content, dict) or self.on_own_attributes is None:
            return
        try:
            self.on_own_attributes(content)
        except Exception:
            log.exception("Handling the gateway's shared attributes failed")

    # -- device RPC and attribute updates ---------------------------------------------
    def _device_rpc(self, content):
        if not isinstance(content, dict) or not isinstance(content.get("data"), dict):
            log.warning("Malformed RPC from the platform ignored: %.200s", content)
            return
        if "method" not in content["data"]:
            return  # a reply (ours, echoed by a plain broker standing in for the platform)
        device = content["device"] = self.names.local(content.get("device"))
        request_id = content["data"].get("id")
        connector = self._owner_of(device)
        if connector is None:
            log.warning("RPC %s for unknown device %r", content["data"].get("method"), device)
            self.send_rpc_reply(device, request_id, {"error": "device %s is not connected to this gateway" % device})
            return
        try:
            connector.server_side_rpc_handler(content)
        except Exception as e:
            log.exception("Connector %s failed on RPC for %s", connector.get_name(), device)
            self.send_rpc_reply(device, request_id, {"error": "connector failed: %s" % e})

    def send_rpc_reply(self, device, request_id, content):
        # type: (str, Any, Any) -> None
        """Answer an RPC of a device: {"device", "id", "data"} on v1/gateway/rpc (or the
        gateway device's RPC, for a connector RPC that named the device)."""
        if self._connector_calls:
            with self._lock:
                gateway_request = self._connector_calls.pop((device, request_id), None)
            if gateway_request is not None:
                self._publish(topics.ME_RPC_RESPONSE + gateway_request, dumps(content))
                return
        self._publish(topics.RPC, dumps({"device": self.names.platform(device), "id": request_id, "data": content}))

    def _attribute_update(self, content):
        if not isinstance(content, dict) or "device" not in content or "data" not in content:
            # Gateway-format uploads ({device: {..}}) are ours, echoed by a plain broker.
            log.debug("Not an attribute update, ignored: %.200s", content)
            return
        content["device"] = self.names.local(content["device"])
        connector = self._owner_of(content["device"])
        if connector is None:
            log.warning("Attribute update for unknown device %r ignored", content["device"])
            return
        try:
            connector.on_attributes_update(content)
        except Exception:
            log.exception("Connector %s failed on an attribute update", connector.get_name())

    # -- attribute requests -----------------------------------------------------------
    def request_attributes(self, device, keys, callback, shared=True):
        # type: (str, List[str], Callable[[Dict[str, Any]], None], bool) -> int
        """Ask the platform for a device's attributes; callback(response) on paho's thread."""
        request_id = next(self._ids)
        with self._lock:
            self._attribute_requests[request_id] = callback
        request = {"id": request_id, "device": self.names.platform(device), "client": not shared}
        if len(keys) == 1:
            request["key"] = keys[0]
        else:
            request["keys"] = list(keys)
        payload = dumps(request)
        with self._lock:
            if not self._ready:
                self._unsent.append(payload)
                return request_id
        self._publish(topics.ATTRIBUTES_REQUEST, payload)
        return request_id

    def connection_ready(self):
        """The platform connection is subscribed (paho's thread): send the held requests."""
        with self._lock:
            self._ready = True
            unsent, self._unsent = self._unsent, []
        for payload in unsent:
            self._publish(topics.ATTRIBUTES_REQUEST, payload)

    def connection_lost(self):
        """The platform connection ended (paho's thread): hold requests until it is ready."""
        with self._lock:
            self._ready = False

    def _attribute_response(self, content):
        request_id = content.get("id") if isinstance(content, dict) else None
        with self._lock:
            callback = self._attribute_requests.pop(request_id, None)
        if callback is None:
            log.warning("Attribute response with unknown id %r ignored", request_id)
            return
        if isinstance(content.get("device"), str):
            content["device"] = self.names.local(content["device"])
        try:
            callback(content)
        except Exception:
            log.exception("Attribute response handler failed")

    # -- RPC from the gateway to the platform (getSessionLimits) ---------------------
    def request_platform(self, method, params, callback):
        # type: (str, Any, Callable[[Any], None]) -> int
        """Call a platform-side RPC of the gateway device; callback(answer) on paho's thread."""
        request_id = next(self._ids)
        with self._lock:
            self._platform_requests[str(request_id)] = callback
        self._publish(topics.ME_RPC_REQUEST + str(request_id), dumps({"method": method, "params": params}))
        return request_id

    def _platform_answer(self, request_id, content):
        with self._lock:
            callback = self._platform_requests.pop(request_id, None)
        if callback is None:
            return  # ours echoed by a plain broker, or an answer that came too late
        try:
            callback(content)
        except Exception:
            log.exception("Handling the platform's answer %s failed", request_id)

    # -- the gateway's own RPC --------------------------------------------------------
    def _gateway_rpc(self, request_id, content):
        with self._lock:
            own = self._platform_requests.get(request_id)
        if own is not None:
            # Our own request came back: an MQTT broker stands in for ThingsBoard (which
            # never echoes). An answer may still come from whoever plays the platform.
            if self._on_echo is not None:
                self._on_echo(content.get("method") if isinstance(content, dict) else None)
            return
        method = content.get("method") if isinstance(content, dict) else None
        params = parsed_params(content.get("params")) if isinstance(content, dict) else None
        handler = self._methods.get(method)
        then = None
        if handler is None:
            if isinstance(method, str) and self._connector_rpc(request_id, method, params):
                return  # the connector answers
            answer = {"code": 404, "error": "Unknown method: %s" % method,
                      "known": sorted(self._methods)}  # type: Dict[str, Any]
        else:
            try:
                result = handler(params)
                if isinstance(result, Then):
                    result, then = result.value, result.action
                answer = result if isinstance(result, dict) and "code" in result else {"code": 200, "resp": result}
            except Exception as e:
                log.exception("Gateway RPC %s failed", method)
                answer = {"code": 500, "error": "%s: %s" % (type(e).__name__, e)}
        self._publish(topics.ME_RPC_RESPONSE + request_id, dumps(answer))
        if then is not None:
            then()  # after the answer is on its way (a restart, a reboot)

    def _connector_rpc(self, request_id, method, params):
        # type: (str, str, Any) -> bool
        """`<connector type>_<method>` from the connector RPC page: to the connector whose
        id is params' connectorId (every running one of that type when none is given), as
        its own RPC handling takes a device RPC; the reply goes to the gateway device."""
        kind, _, name = method.partition("_")
        if not name:
            return False
        connector_id = params.pop("connectorId", None) if isinstance(params, dict) else None
        connectors = self._connectors_of(kind, connector_id)
        if not connectors:
            return False
        device = None
        if isinstance(params, dict):
            named = params.get("deviceName", params.get("device"))
            device = self.names.local(named) if isinstance(named, str) else None
        number = int(request_id) if request_id.isdigit() else request_id  # as a device RPC's id
        if device is not None:
            with self._lock:
                self._connector_calls[(device, number)] = request_id
        content = {"device": device, "data": {"id": number, "method": name, "params": params}}
        for connector in connectors:
            try:
                connector.server_side_rpc_handler(content)
            except Exception as e:
                log.exception("Connector %s failed on the connector RPC %s", connector.get_name(), method)
                self._publish(topics.ME_RPC_RESPONSE + request_id,
                              dumps({"code": 500, "error": "connector failed: %s" % e}))
        return True
