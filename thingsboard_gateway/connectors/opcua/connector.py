"""OpcUaConnector: maps OPC-UA nodes to devices by browse path or node id, reads them by
polling (one Read request per device per period) or data-change subscriptions, calls
methods and writes nodes on RPC and attribute updates.

One thread, `connector:<name>`, owns the python-opcua client: it connects (with backoff),
browses, polls, and runs queued RPC/write tasks. Subscription callbacks arrive on
python-opcua's own thread and only hand values to the gateway.
"""
import calendar
import logging
import queue
import re
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.opcua import config as opcua_config
from thingsboard_gateway.runtime.failures import FailureLog
from thingsboard_gateway.runtime.backoff import BackoffPolicy

log = logging.getLogger(__name__)

MAX_BROWSE_DEPTH = 8
LOOKUP = re.compile(r"^\$\{(.*)\}$")
VARIANTS = {"integer": "Int64", "int": "Int64", "long": "Int64", "float": "Float", "double": "Double",
            "string": "String", "boolean": "Boolean", "bool": "Boolean"}


def _inner(expression):
    # type: (str) -> str
    match = LOOKUP.match(expression.strip())
    return match.group(1).strip() if match else expression.strip()


class Device(object):
    """A matched device node and its resolved value nodes."""

    def __init__(self, mapping, node, path):
        self.mapping = mapping
        self.node = node
        self.path = path
        self.name = None  # type: Optional[str]
        self.type = "default"
        self.values = []  # type: List[Tuple[str, str, Any]]  (section, key, node)
        self.subscription = None  # type: Any


class OpcUaConnector(Connector):
    """Upstream-compatible OPC-UA connector (see README.md beside this file)."""

    @staticmethod
    def load_config(config, file, warnings=None):
        return opcua_config.load(config, file, warnings)

    @staticmethod
    def describe_config(config):
        return "server %s, %d mapping(s): %s" % (config["server"]["url"], len(config["mapping"]),
                                                 ", ".join(m["deviceNodePattern"] for m in config["mapping"]))

    def __init__(self, gateway, config, connector_type):
        super(OpcUaConnector, self).__init__(gateway, config, connector_type)
        self._config = opcua_config.load(config, config.get("configuration", "opcua.json"))
        self._server = self._config["server"]
        self.failures = FailureLog(log)
        self._tasks = queue.Queue()  # type: queue.Queue
        self._client = None  # type: Any
        self.devices = {}  # type: Dict[str, Device]
        self._subscribed = False
        self._counts = {"polls": 0, "values": 0, "subscription_values": 0, "reconnects": 0}
        self._notified = []  # type: List[Tuple[Device, Tuple[str, str, Any, Optional[int]]]]
        self._notified_lock = threading.Lock()
        reconnect = self._server["reconnect"]
        self._backoff = BackoffPolicy(reconnect["minDelay"] / 1000.0, reconnect["maxDelay"] / 1000.0)

    # -- life cycle -----------------------------------------------------------------------
    def open(self):
        self.stop_event.clear()
        self.start_thread(self._run)

    def close(self):
        self.stop_event.set()
        self._tasks.put(None)
        self.join_threads(max(5.0, self._server["timeoutInMillis"] / 1000.0 + 2))

    def is_connected(self):
        return self._client is not None

    def statistics(self):
        values = dict(self._counts)
        values["devices"] = len(self.devices)
        for kind, count in self.failures.snapshot().items():
            values["failures_" + kind] = count
        return values

    def _run(self):
        while not self.stop_event.is_set():
            try:
                self._connect()
                self._backoff.connected()
                self._serve()
            except Exception as e:  # network, protocol and server errors all end the session
                if self.stop_event.is_set():
                    break
                self.failures.count("connection", "OPC-UA %s: %s: %s" % (self._server["url"], type(e).__name__, e))
            self._disconnect()
            if self.stop_event.is_set():
                break
            self._counts["reconnects"] += 1
            if self.stop_event.wait(self._backoff.next_delay()):
                break
        self._disconnect()

    def _connect(self):
        from opcua import Client
        server = self._server
        client = Client(server["url"], timeout=server["timeoutInMillis"] / 1000.0)
        client.session_timeout = server["sessionTimeoutInMillis"]
        identity = server["identity"]
        if server["security"] != "None":
            client.set_security_string("%s,%s,%s,%s" % (server["security"], identity["mode"], identity["cert"],
                                                        identity["privateKey"]))
        elif identity["type"] == "cert" and identity.get("cert"):
            client.load_client_certificate(identity["cert"])
            client.load_private_key(identity["privateKey"])
        if identity["type"] == "username":
            client.set_user(identity["username"])
            client.set_password(identity.get("password") or "")
        client.connect()
        self._client = client
        log.info("OPC-UA connector %s connected to %s", self.name, server["url"])

    def _disconnect(self):
        client, self._client = self._client, None
        for device in self.devices.values():
            device.subscription = None
        self._subscribed = False
        if client is None:
            return
        try:
            client.disconnect()
        except Exception:  # the server may be gone already
            log.debug("OPC-UA disconnect failed", exc_info=True)

    # -- the session ----------------------------------------------------------------------
    def _serve(self):
        server = self._server
        self._scan()
        next_scan = time.monotonic() + server["scanPeriodInMillis"] / 1000.0
        period = server["pollPeriodInMillis"] / 1000.0
        next_poll = next_check = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self._scan()
                next_scan = now + server["scanPeriodInMillis"] / 1000.0
            if self._subscribed:
                self._flush_notifications()
                if now >= next_check:
                    self._client.get_node("i=2258").get_value()  # CurrentTime: notices a dead session
                    next_check = now + 1.0
                wait = min(self._server["subCheckPeriodInMillis"] / 1000.0, next_scan - now)
            else:
                if now >= next_poll:
                    self._poll()
                    next_poll = max(next_poll + period, now)
                wait = max(0.0, min(next_poll, next_scan) - time.monotonic())
            try:
                task = self._tasks.get(timeout=wait)
            except queue.Empty:
                continue
            if task is not None:
                task()

    def _browse(self):
        """(path, node) of every node under Objects, paths like Root.Objects.MyObject."""
        out = []
        objects = self._client.get_objects_node()
        stack = [(objects, "Root.Objects", 0)]
        while stack:
            node, path, depth = stack.pop()
            out.append((path, node))
            if depth >= MAX_BROWSE_DEPTH:
                continue
            for child in node.get_children(refs=33):  # HierarchicalReferences
                name = child.get_browse_name().Name
                if path == "Root.Objects" and name == "Server":
                    continue  # the server's own diagnostics
                stack.append((child, path + "." + name, depth + 1))
        return out

    def _scan(self):
        """Find the devices of every mapping (again: nodes may come and go)."""
        found = {}  # type: Dict[str, Device]
        browsed = None
        for index, mapping in enumerate(self._config["mapping"]):
            pattern = mapping["deviceNodePattern"]
            if mapping["deviceNodeSource"] == "identifier":
                node = self._client.get_node(pattern)
                try:
                    candidates = [(pattern, node)] if node.get_browse_name() else []
                except Exception:
                    candidates = []
            else:
                browsed = browsed if browsed is not None else self._browse()
                candidates = [(path, node) for path, node in browsed if mapping["compiled_pattern"].fullmatch(path)]
            if not candidates:
                self.failures.count("pattern:%d" % index, "OPC-UA connector %s: deviceNodePattern %r matches no node"
                                    % (self.name, pattern))
            for path, node in candidates:
                device = self._resolve(Device(mapping, node, path))
                if device is not None:
                    found[device.name] = device
        previous, self.devices = self.devices, found  # before announcing: RPCs may follow at once
        for name in set(previous) - set(found):
            self.gateway.del_device(name)
        for name, device in found.items():
            if name not in previous:
                self.gateway.add_device(name, device.type, self)
        if self._server["enableSubscriptions"]:
            self._subscribe()

    def _node_for(self, device, expression):
        """A value node by relative path (`${Temperature}`, `${Sub.Value}`), absolute
        browse path (`Root\\.Objects\\.Obj\\.Var`) or node id (`ns=2;i=5`)."""
        target = _inner(expression)
        if opcua_config.NODE_ID.match(target):
            return self._client.get_node(target)
        steps = [s for s in re.split(r"\\?\.", target) if s]
        node = device.node
        if steps[:2] == ["Root", "Objects"]:
            node, steps = self._client.get_objects_node(), steps[2:]
        for step in steps:
            node = next((c for c in node.get_children() if c.get_browse_name().Name == step), None)
            if node is None:
                return None
        return node

    def _resolve(self, device):
        # type: (Device) -> Optional[Device]
        mapping = device.mapping
        info = mapping["deviceInfo"]
        name = self._expression(device, info.get("deviceNameExpressionSource", "constant"),
                                info.get("deviceNameExpression") or mapping.get("deviceNameExpression"))
        if not name:
            self.failures.count("device_name:" + device.path, "OPC-UA connector %s: no device name for %s"
                                % (self.name, device.path))
            return None
        device.name = str(name)
        device.type = str(self._expression(device, info.get("deviceProfileExpressionSource", "constant"),
                                           info.get("deviceProfileExpression") or "default") or "default")
        for section in ("attributes", "timeseries"):
            for entry in mapping[section]:
                node = self._node_for(device, entry["value"])
                if node is None:
                    self.failures.count("node:%s:%s" % (device.name, entry["key"]),
                                        "OPC-UA connector %s: %s %s: %s found no node under %s"
                                        % (self.name, device.name, entry["key"], entry["value"], device.path))
                    continue
                device.values.append((section, entry["key"], node))
        return device

    def _expression(self, device, source, expression):
        if expression is None:
            return None
        if source == "constant" or "${" not in str(expression):
            return expression
        node = self._node_for(device, expression)
        return node.get_value() if node is not None else None

    # -- reading --------------------------------------------------------------------------
    def _poll(self):
        self._counts["polls"] += 1
        for device in list(self.devices.values()):
            if not device.values:
                continue
            values = self._client.get_values([node for _, _, node in device.values])  # one Read request
            self._send(device, [(s, k, v) for (s, k, _), v in zip(device.values, values)], None)

    def _send(self, device, items, ts):
        """items: (section, key, value) read at `ts` (ms; None = now)."""
        self._send_stamped(device, [(section, key, value, ts) for section, key, value in items])

    def _send_stamped(self, device, items):
        """items: (section, key, value, ts) -> one record: telemetry grouped by ts."""
        now = int(time.time() * 1000)
        entries, attributes = {}, {}  # type: Dict[int, Dict[str, Any]], Dict[str, Any]
        for section, key, value, ts in items:
            if section == "timeseries":
                entries.setdefault(ts or now, {})[key] = _plain(value)
            else:
                attributes[key] = _plain(value)
        self._counts["values"] += len(items)
        self.gateway.send_to_storage(self.name, self.id, {
            "deviceName": device.name, "deviceType": device.type, "attributes": attributes,
            "telemetry": [{"ts": ts, "values": values} for ts, values in sorted(entries.items())]})

    def _flush_notifications(self):
        """Values that subscriptions delivered since the last flush, one record per device."""
        with self._notified_lock:
            notified, self._notified = self._notified, []
        per_device = {}  # type: Dict[str, Tuple[Device, List[Any]]]
        for device, item in notified:
            per_device.setdefault(device.name, (device, []))[1].append(item)
        for device, items in per_device.values():
            self._send_stamped(device, items)

    def _subscribe(self):
        try:
            period = self._server["subCheckPeriodInMillis"]
            for device in self.devices.values():
                if device.values and device.subscription is None:
                    handler = _DataChange(self, device)  # one per device: a node may serve several
                    device.subscription = self._client.create_subscription(period, handler)
                    device.subscription.subscribe_data_change([n for _, _, n in device.values])
            self._subscribed = True
        except Exception as e:  # e.g. BadTooManySubscriptions: polling works everywhere
            self.failures.count("subscription", "OPC-UA connector %s: subscriptions refused (%s); polling instead"
                                % (self.name, e))
            self._subscribed = False

    # -- RPC and writes (queued to the connector's thread) --------------------------------
    def _queue(self, work, reply):
        def task():
            try:
                result = work()
            except Exception as e:  # the server's error (bad argument, access denied ...)
                result = {"error": "%s: %s" % (type(e).__name__, e)}
            if reply is not None:
                reply(result)
        self._tasks.put(task)

    def server_side_rpc_handler(self, content):
        device_name, data = content.get("device"), content.get("data") or {}
        request_id, method, params = data.get("id"), data.get("method"), data.get("params")

        def reply(result):
            self.gateway.send_rpc_reply(device_name, request_id, result)

        device = self.devices.get(device_name)
        if device is None:
            reply({"error": "unknown OPC-UA device %s" % device_name})
            return
        self._queue(lambda: self._rpc(device, method, params), reply)

    def _rpc(self, device, method, params):
        from opcua import ua
        if method in ("get", "set") and isinstance(params, dict) and ("path" in params or "node" in params):
            node = self._node_for(device, params.get("path") or params.get("node"))
            if node is None:
                return {"error": "no node %s" % (params.get("path") or params.get("node"))}
            if method == "get":
                return {"value": _plain(node.get_value())}
            self._write(node, params.get("value"))
            return {"success": True}
        entry = next((m for m in device.mapping["rpc_methods"] if m["method"] == method), None)
        if entry is None:
            return {"error": "no rpc_methods entry %s for %s" % (method, device.name)}
        method_node = self._node_for(device, "${%s}" % method)
        if method_node is None:
            return {"error": "device %s has no method %s" % (device.name, method)}
        values = params if isinstance(params, list) else (params.get("arguments") if isinstance(params, dict)
                                                          else None)
        defaults = entry["arguments"]
        if values is None:
            values = [a.get("value") for a in defaults]
        arguments = []
        for i, value in enumerate(values):
            kind = VARIANTS.get(defaults[i]["type"] if i < len(defaults) else "", None)
            arguments.append(ua.Variant(value, getattr(ua.VariantType, kind)) if kind else value)
        result = device.node.call_method(method_node, *arguments)
        return {"result": _plain(result)}

    def _write(self, node, value):
        from opcua import ua
        variant_type = node.get_data_type_as_variant_type()
        node.set_value(ua.DataValue(ua.Variant(_cast_for(variant_type, value), variant_type)))

    def on_attributes_update(self, content):
        device = self.devices.get(content.get("device"))
        if device is None:
            return
        for key, value in (content.get("data") or {}).items():
            entry = next((e for e in device.mapping["attributes_updates"] if e["key"] == key), None)
            if entry is None:
                continue

            def work(entry=entry, value=value):
                node = self._node_for(device, entry["value"])
                if node is None:
                    raise ValueError("no node %s" % entry["value"])
                self._write(node, value)
            self._queue(work, None)


class _DataChange(object):
    """python-opcua's subscription handler for one device: values, with their source
    timestamps, to the gateway (on python-opcua's thread)."""

    def __init__(self, connector, device):
        self.connector = connector
        self.device = device
        self.targets = {}  # type: Dict[str, List[Tuple[str, str]]]  node id -> (section, key)
        for section, key, node in device.values:
            self.targets.setdefault(node.nodeid.to_string(), []).append((section, key))

    def datachange_notification(self, node, value, data):
        targets = self.targets.get(node.nodeid.to_string())
        if not targets:
            return
        ts = None
        try:
            stamp = data.monitored_item.Value.SourceTimestamp
            if stamp is not None:
                ts = int(calendar.timegm(stamp.timetuple()) * 1000 + stamp.microsecond // 1000)
        except AttributeError:
            pass
        connector = self.connector
        with connector._notified_lock:  # the connector's thread sends them, batched
            connector._counts["subscription_values"] += 1
            connector._notified.extend((self.device, (section, key, value, ts)) for section, key in targets)

    def event_notification(self, event):
        pass


def _plain(value):
    """OPC-UA values as JSON-able values."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "Value"):
        return _plain(value.Value)
    return str(value)


def _cast_for(variant_type, value):
    name = getattr(variant_type, "name", "")
    if name == "Boolean":
        return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "on")
    if name in ("Float", "Double"):
        return float(value)
    if "Int" in name or name == "Byte" or name == "SByte":
        return int(value)
    if name == "String":
        return str(value)
    return value
