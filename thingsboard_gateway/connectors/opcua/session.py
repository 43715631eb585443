"""One OPC-UA server session on a DeviceWorker: connect, browse the address space for the
mapped devices, read them by polling (one Read request per device per period) or
data-change subscriptions, call methods and write nodes. Every method runs on the
worker's thread, which owns the python-opcua client; subscription callbacks arrive on
python-opcua's own thread and only queue values for the `flush` job."""
import calendar
import logging
import re
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.opcua import config as opcua_config
from thingsboard_gateway.connectors.opcua.downlink import cast_for, method_arguments
from thingsboard_gateway.connectors.opcua.uplink import plain
from thingsboard_gateway.connectors.worker import DeviceSession, SessionLost
from thingsboard_gateway.conversion.report import device_strategy

log = logging.getLogger(__name__)

MAX_BROWSE_DEPTH = 8
LIVENESS_PERIOD = 1.0  # while subscribed: read the server's CurrentTime to notice a dead session
LOOKUP = re.compile(r"^\$\{(.*)\}$")


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
        self.strategy = device_strategy(mapping)  # the mapping's report strategies, or None


class OpcUaSession(DeviceSession):
    """The server of one OPC-UA connector. Jobs: scan (scanPeriodInMillis), and poll
    (pollPeriodInMillis) or, while subscribed, flush (subCheckPeriodInMillis) and check."""

    def __init__(self, connector):
        self.connector = connector
        self.name = connector.name
        self.gateway = connector.gateway
        self.failures = connector.failures
        self._config = connector.opcua_config
        self._server = self._config["server"]
        self._counts = connector.counts
        self._client = None  # type: Any
        self._subscribed = False
        self._notified = []  # type: List[Tuple[Device, Tuple[str, str, Any, Optional[int]]]]
        self._notified_lock = threading.Lock()

    @property
    def devices(self):
        # type: () -> Dict[str, Device]
        return self.connector.devices

    def connect(self):
        self._connect()
        server = self._server
        self._scan()
        scan_period = server["scanPeriodInMillis"] / 1000.0
        self.worker.schedule.add("scan", scan_period, self.worker.clock() + scan_period)
        self._schedule_reading()

    def _schedule_reading(self):
        """Poll, or flush what subscriptions delivered and check the session is alive."""
        schedule, server = self.worker.schedule, self._server
        if self._subscribed and "flush" not in schedule:
            schedule.remove("poll")
            schedule.add("flush", server["subCheckPeriodInMillis"] / 1000.0)
            schedule.add("check", LIVENESS_PERIOD)
        elif not self._subscribed and "poll" not in schedule:
            schedule.remove("flush")
            schedule.remove("check")
            schedule.add("poll", server["pollPeriodInMillis"] / 1000.0)

    def run_job(self, key):
        if key == "scan":
            self._scan()
            self._schedule_reading()
        elif key == "poll":
            self._poll()
        elif key == "flush":
            self._flush_notifications()
        elif key == "check":
            self._client.get_node("i=2258").get_value()  # CurrentTime: raises when the session is dead

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


    def disconnect(self):
        client, self._client = self._client, None
        for device in self.devices.values():
            device.subscription = None
            self.worker.set_online(device.name, device.type, False)
        self._subscribed = False
        for key in ("scan", "poll", "flush", "check"):
            self.worker.schedule.remove(key)
        if client is None:
            return
        try:
            client.disconnect()
        except Exception:  # the server may be gone already
            log.debug("OPC-UA disconnect failed", exc_info=True)

    # -- the address space ---------------------------------------------------------------
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
        previous, self.connector.devices = self.devices, found  # before announcing: RPCs may follow at once
        for name in set(previous) - set(found):
            self.worker.set_online(name, previous[name].type, False)
        for name, device in found.items():
            self.worker.set_online(name, device.type, True)
        if self._server["enableSubscriptions"]:
            self._subscribe()

    def node_for(self, device, expression):
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
                node = self.node_for(device, entry["value"])
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
        node = self.node_for(device, expression)
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
        self._counts["values"] += len(items)
        data = {"deviceName": device.name, "deviceType": device.type, "values": items, "ts": int(time.time() * 1000)}
        converter = self.connector.converter_for(device.mapping)
        try:
            converted = converter.convert(device.mapping, data)
        except Exception as e:  # a custom converter's own failure: counted, the session goes on
            self.failures.count("converter:" + device.name, "OPC-UA connector %s: converter failed for %s: %s: %s"
                                % (self.name, device.name, type(e).__name__, e))
            return
        for record in converted if isinstance(converted, list) else [converted]:
            if record:
                if device.strategy is not None and isinstance(record, dict):
                    record.setdefault("reportStrategy", device.strategy)
                self.gateway.send_to_storage(self.name, self.connector.id, record)

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
                    handler = DataChange(self, device)  # one per device: a node may serve several
                    device.subscription = self._client.create_subscription(period, handler)
                    device.subscription.subscribe_data_change([n for _, _, n in device.values])
            self._subscribed = True
        except Exception as e:  # e.g. BadTooManySubscriptions: polling works everywhere
            self.failures.count("subscription", "OPC-UA connector %s: subscriptions refused (%s); polling instead"
                                % (self.name, e))
            self._subscribed = False

    # -- RPC and writes (queued to the worker's thread by the connector) -----------------
    def rpc(self, device, method, params):
        from opcua import ua
        if self._client is None:
            raise SessionLost("not connected to %s" % self._server["url"])
        if method in ("get", "set") and isinstance(params, dict) and ("path" in params or "node" in params):
            node = self.node_for(device, params.get("path") or params.get("node"))
            if node is None:
                return {"error": "no node %s" % (params.get("path") or params.get("node"))}
            if method == "get":
                return {"value": plain(node.get_value())}
            self.write(node, params.get("value"))
            return {"success": True}
        entry = next((m for m in device.mapping["rpc_methods"] if m["method"] == method), None)
        if entry is None:
            return {"error": "no rpc_methods entry %s for %s" % (method, device.name)}
        method_node = self.node_for(device, "${%s}" % method)
        if method_node is None:
            return {"error": "device %s has no method %s" % (device.name, method)}
        arguments = [ua.Variant(value, getattr(ua.VariantType, kind)) if kind else value
                     for value, kind in method_arguments(entry, params)]
        result = device.node.call_method(method_node, *arguments)
        return {"result": plain(result)}

    def write(self, node, value):
        from opcua import ua
        variant_type = node.get_data_type_as_variant_type()
        node.set_value(ua.DataValue(ua.Variant(cast_for(getattr(variant_type, "name", ""), value), variant_type)))


class DataChange(object):
    """python-opcua's subscription handler for one device: values, with their source
    timestamps, to the gateway (on python-opcua's thread)."""

    def __init__(self, session, device):
        self.session = session
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
        session = self.session
        with session._notified_lock:  # the worker's flush job sends them, batched
            session._counts["subscription_values"] += 1
            session._notified.extend((self.device, (section, key, value, ts)) for section, key in targets)

    def event_notification(self, event):
        pass
