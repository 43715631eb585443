"""A platform double on a real broker: records what the gateway sends, answers attribute
requests, sends RPCs to devices and to the gateway itself."""
import itertools
import json
import threading
import time

import paho.mqtt.client as mqtt


class PlatformDouble(object):
    """Subscribes v1/gateway/# and v1/devices/me/# on the broker at `port`."""

    GENEROUS = {"maxPayloadSize": 65536, "maxInflightMessages": 1000,
                "rateLimits": {"messages": "100000:1", "telemetryMessages": "100000:1", "telemetryDataPoints": "1000000:1"},
                "gatewayRateLimits": {"messages": "100000:1", "telemetryMessages": "100000:1",
                                      "telemetryDataPoints": "1000000:1"}}

    def __init__(self, port, attributes=None, persistent=False, username=None, password=None,
                 session_limits=GENEROUS):
        self.port = port
        self.attributes = attributes or {}  # device -> {key: value} answered to requests
        # The gateway device, as ThingsBoard keeps it: its shared attributes (answered to its
        # requests on v1/devices/me/attributes/request/<n>, pushed with push_shared) and the
        # client attributes it published. A plain broker echoes the gateway's own publishes
        # back to it; ThingsBoard does not (the gateway must ignore its own echo).
        self.own_shared = {}  # type: dict
        self.own_client = {}  # type: dict
        self._pushed = []  # payloads this double published on v1/devices/me/attributes
        self.session_limits = session_limits  # answered to getSessionLimits (None: no answer)
        # Called with this double when the gateway asks for its session limits (a new session),
        # before the answer: what the platform sends then reaches the gateway before it delivers.
        self.before_limits = None
        self.package = None  # the software package served on v2/sw/request/... (serve_software)
        self.chunk_requests = []  # (request id, chunk number, size asked for)
        self.hold_chunks = threading.Event()  # set: chunk requests are noted, not answered
        self.messages = []  # (time, topic, parsed payload)
        self.cond = threading.Condition()
        self._ids = itertools.count(1000)  # apart from the ids of the gateway's own requests
        # persistent: keep the subscription in the broker's session (for broker restarts).
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="platform-double-%d" % id(self),
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(0.1, 0.5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self._subscribed = threading.Event()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("platform double could not subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe([("v1/gateway/#", 1), ("v1/devices/me/#", 1), ("v2/sw/request/#", 1)])
        self._subscribed.set()

    def _on_message(self, client, userdata, msg):
        try:
            body = json.loads(msg.payload.decode())
        except ValueError:
            body = msg.payload
        if msg.topic.startswith("v2/sw/request/"):
            self._answer_chunk(msg.topic, body)
        if msg.topic == "v1/gateway/attributes/request":
            self._answer_attributes(body)
        if msg.topic.startswith("v1/devices/me/attributes/request/"):
            self._answer_own_request(msg.topic.rsplit("/", 1)[1], body)
        if msg.topic == "v1/devices/me/attributes" and isinstance(body, dict):
            with self.cond:
                if msg.payload in self._pushed:
                    self._pushed.remove(msg.payload)
                    return  # our own push, back from the broker
                self.own_client.update(body)
        if msg.topic.startswith("v1/devices/me/rpc/request/") and isinstance(body, dict) \
                and body.get("method") == "getSessionLimits" and self.session_limits is not None:
            hook, self.before_limits = self.before_limits, None
            if hook is not None:
                hook(self)
            self.client.publish("v1/devices/me/rpc/response/" + msg.topic.rsplit("/", 1)[1],
                                json.dumps(self.session_limits), qos=1)
        with self.cond:
            self.messages.append((time.time(), msg.topic, body))
            self.cond.notify_all()

    def _answer_attributes(self, body):
        values = self.attributes.get(body.get("device"), {})
        if "key" in body:
            answer = {"id": body["id"], "device": body["device"], "value": values.get(body["key"])}
        else:
            answer = {"id": body["id"], "device": body["device"],
                      "values": {k: values[k] for k in body.get("keys", []) if k in values}}
        self.client.publish("v1/gateway/attributes/response", json.dumps(answer), qos=1)

    def _answer_own_request(self, request_id, body):
        keys = (body.get("sharedKeys") or "").split(",") if isinstance(body, dict) else []
        with self.cond:
            shared = {k: self.own_shared[k] for k in keys if k in self.own_shared}
        answer = {"shared": shared} if shared else {}
        self.client.publish("v1/devices/me/attributes/response/" + request_id, json.dumps(answer), qos=1)

    def push_shared(self, values):
        """What ThingsBoard does when its UI saves: keep and push shared attributes."""
        payload = json.dumps(values).encode()
        with self.cond:
            self.own_shared.update(values)
            self._pushed.append(payload)
        self.client.publish("v1/devices/me/attributes", payload, qos=1)

    def own_requests(self):
        """The sharedKeys of every request the gateway made for its own attributes."""
        return [body.get("sharedKeys") for _, t, body in list(self.messages)
                if t.startswith("v1/devices/me/attributes/request/") and isinstance(body, dict)]

    def latest_client(self, key):
        with self.cond:
            return self.own_client.get(key)

    def logs(self, key="LOGS"):
        """Remote log lines the gateway sent as telemetry, in order."""
        out = []
        for body in self.on("v1/devices/me/telemetry"):
            for entry in body if isinstance(body, list) else []:
                if isinstance(entry, dict) and key in entry.get("values", {}):
                    out.append(entry["values"][key])
        return out

    # -- queries ---------------------------------------------------------------------
    def on(self, topic):
        with self.cond:
            return [body for _, t, body in self.messages if t == topic]

    def wait_for(self, predicate, timeout=15.0):
        """Wait until predicate(messages) is truthy; return its value (or raise)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                result = predicate(list(self.messages))
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("platform double: condition not met in %.0f s; got %d messages: %s"
                                         % (timeout, len(self.messages),
                                            [(t, b) for _, t, b in self.messages[-5:]]))
                self.cond.wait(remaining)

    def wait_topic(self, topic, match=lambda body: True, timeout=15.0):
        return self.wait_for(lambda msgs: next((b for _, t, b in msgs if t == topic and match(b)), None), timeout)

    def telemetry(self):
        """[(device, values, ts)] in arrival order."""
        out = []
        for body in self.on("v1/gateway/telemetry"):
            for device, entries in body.items():
                for entry in entries if isinstance(entries, list) else [entries]:
                    out.append((device, entry.get("values", entry), entry.get("ts")))
        return out

    def latest(self, device):
        """The newest value of every telemetry key of `device`."""
        values = {}
        for d, v, _ in self.telemetry():
            if d == device:
                values.update(v)
        return values

    def stat(self, key):
        """The newest value of a statistics key (None before the first report with it)."""
        found = [b["values"][key] for b in self.on("v1/devices/me/telemetry")
                 if isinstance(b, dict) and key in b.get("values", {})]
        return found[-1] if found else None

    # -- actions ---------------------------------------------------------------------
    def device_rpc(self, device, method, params=None, request_id=None):
        request_id = request_id if request_id is not None else next(self._ids)
        self.client.publish("v1/gateway/rpc", json.dumps(
            {"device": device, "data": {"id": request_id, "method": method, "params": params or {}}}), qos=1)
        return request_id

    def gateway_rpc(self, method, params=None):
        request_id = next(self._ids)
        self.client.publish("v1/devices/me/rpc/request/%d" % request_id,
                            json.dumps({"method": method, "params": params or {}}), qos=1)
        return request_id

    # -- ThingsBoard's software OTA -------------------------------------------------------
    def serve_software(self, title, version, data, algorithm="SHA256", checksum=None):
        """Assign a package as ThingsBoard does: delete sw_url, then save the sw_* shared
        attributes (answered to requests too); chunks are served from `data`."""
        import hashlib
        self.package = data
        if checksum is None:
            checksum = hashlib.new(algorithm.lower().replace("sha", "sha"), data).hexdigest()
        self.push_shared({"deleted": ["sw_url"]})
        self.push_shared({"sw_title": title, "sw_version": version, "sw_tag": "%s %s" % (title, version),
                          "sw_size": len(data), "sw_checksum_algorithm": algorithm, "sw_checksum": checksum})

    def _answer_chunk(self, topic, body):
        parts = topic.split("/")  # v2/sw/request/{id}/chunk/{n}
        request_id, number = parts[3], int(parts[5])
        size = int(body) if isinstance(body, int) or (isinstance(body, (str, bytes)) and str(body).isdigit()) else 0
        with self.cond:
            self.chunk_requests.append((request_id, number, size))
        if self.hold_chunks.is_set() or self.package is None:
            return
        if size > 65536:
            self.client.publish("v2/fw/error", b"PAYLOAD_TOO_LARGE", qos=1)
            return
        self.client.publish("v2/sw/response/%s/chunk/%d" % (request_id, number),
                            self.package[size * number:size * number + size], qos=1)

    def sw_states(self):
        """The sw_state telemetry, in order ((state, error))."""
        out = []
        for body in self.on("v1/devices/me/telemetry"):
            values = body.get("values", {}) if isinstance(body, dict) else {}
            if "sw_state" in values:
                out.append((values["sw_state"], values.get("sw_error")))
        return out

    # -- ThingsBoard's gateway pages, as they read and call the gateway ------------------
    def answer(self, request_id, timeout=15.0):
        """The gateway device's answer to RPC `request_id`."""
        return self.wait_topic("v1/devices/me/rpc/response/%s" % request_id, timeout=timeout)

    def service_rpc(self, button, params="{}", timeout=15.0):
        """A button of the service RPC widget: method gateway_<button>, params the page's
        text (the string "{}" unless typed otherwise); returns the answer."""
        request_id = next(self._ids)
        self.client.publish("v1/devices/me/rpc/request/%d" % request_id,
                            json.dumps({"method": "gateway_" + button.lower(), "params": params}), qos=1)
        return self.answer(request_id, timeout)

    def connector_rpc(self, connector, method, params, timeout=15.0):
        """The connector RPC page: `<type>_<method>` with the params object and connectorId
        (the connector attribute's configurationJson.id); returns the answer."""
        config = self.latest_client(connector)
        params = dict(params, connectorId=config["configurationJson"]["id"])
        request_id = next(self._ids)
        self.client.publish("v1/devices/me/rpc/request/%d" % request_id,
                            json.dumps({"method": "%s_%s" % (config["type"], method), "params": params}), qos=1)
        return self.answer(request_id, timeout)

    def page_version(self):
        """Version as the pages parse it: "a.b.c" -> the number a.bc."""
        major, minor, patch = (str(self.latest_client("Version")).split(".") + ["0", "0"])[:3]
        return float("%s.%s%s" % (major, minor, patch[:1]))

    def device_tabs(self):
        """connectorName -> {device: connectorType}, from the devices' client attributes."""
        tabs = {}
        for body in self.on("v1/gateway/attributes"):
            for device, values in body.items() if isinstance(body, dict) else ():
                if isinstance(values, dict) and "connectorName" in values:
                    tabs.setdefault(values["connectorName"], {})[device] = values.get("connectorType")
        return tabs

    def shared_attributes(self, device, data):
        self.client.publish("v1/gateway/attributes", json.dumps({"device": device, "data": data}), qos=1)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
