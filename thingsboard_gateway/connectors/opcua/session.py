"""One OPC-UA server session on a DeviceWorker: connect, browse the address space for the
mapped devices, read them by polling or data-change subscriptions, call methods and write
nodes. Every method runs on the worker's thread, which owns the python-opcua client;
subscription callbacks arrive on python-opcua's own thread and only queue values for the
`flush` job.

Built for thousands of nodes per device (upstream ships 9,070 in one mapping): a scan
browses each parent node once (BATCH references per Browse, the rest by BrowseNext) and
resolves every path from those answers, instead of a Browse and a Read per node; polls
and subscriptions go BATCH nodes per request; a device keeps only its value nodes' ids
and its keys (no Node objects, no copies of path strings).
"""
import datetime
import logging
import re
import threading
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.opcua.address_space import BATCH, LOOKUP, AddressSpace
from thingsboard_gateway.connectors.opcua.downlink import cast_for, method_arguments
from thingsboard_gateway.connectors.opcua.uplink import plain
from thingsboard_gateway.connectors.kit import now_ms
from thingsboard_gateway.connectors.worker import DeviceSession, SessionLost
from thingsboard_gateway.conversion.report import device_strategy

log = logging.getLogger(__name__)

LIVENESS_PERIOD = 1.0  # while subscribed: read the server's CurrentTime to notice a dead session
TEMPLATE = re.compile(r"\$\{([^}]*)\}")
EPOCH = datetime.datetime(1970, 1, 1)
MS = datetime.timedelta(milliseconds=1)


class Device(object):
    """A matched device node and its resolved value nodes: keys[i] = (section, key) is
    read from node_ids[i]."""

    __slots__ = ("mapping", "node_id", "path", "name", "type", "keys", "node_ids", "subscription", "strategy")

    def __init__(self, mapping, node_id, path):
        self.mapping = mapping
        self.node_id = node_id
        self.path = path
        self.name = None  # type: Optional[str]
        self.type = "default"
        self.keys = []  # type: List[Tuple[str, str]]
        self.node_ids = []  # type: List[Any]
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
        self._config = connector.settings
        self._server = self._config["server"]
        # figures for statistics (the worker's thread; subscription_values under _notified_lock)
        self.counts = {"polls": 0, "poll_overruns": 0, "values": 0, "subscription_values": 0}
        self._stop = connector.stop_event
        self._client = None  # type: Any
        self._subscribed = False
        self._space = None  # type: Any  AddressSpace of the connected client
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
        self._space = AddressSpace(client, self._stopping)
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

    def _stopping(self):
        # type: () -> bool
        """Long work (a scan, a poll of thousands of nodes) ends early when the connector closes."""
        return self._stop.is_set()

    # -- the address space ---------------------------------------------------------------
    def _browse(self):
        return self._space.objects()

    def _scan(self):
        """Find the devices of every mapping (again: nodes may come and go)."""
        found = {}  # type: Dict[str, Device]
        browsed = None
        self._space.forget()
        try:
            for index, mapping in enumerate(self._config["mapping"]):
                pattern = mapping["deviceNodePattern"]
                if mapping["deviceNodeSource"] == "identifier":
                    node = self._client.get_node(pattern)
                    try:
                        candidates = [(pattern, node.nodeid)] if node.get_browse_name() else []
                    except Exception:
                        candidates = []
                else:
                    browsed = browsed if browsed is not None else self._browse()
                    candidates = [(path, node_id) for path, node_id in browsed
                                  if mapping["compiled_pattern"].fullmatch(path)]
                if not candidates:
                    self.failures.count("pattern:%d" % index, "OPC-UA connector %s: deviceNodePattern %r matches "
                                        "no node" % (self.name, pattern))
                for path, node_id in candidates:
                    if self._stopping():
                        return
                    device = self._resolve(Device(mapping, node_id, path))
                    if device is not None:
                        found[device.name] = device
        finally:
            self._space.forget()  # the browse answers are not kept: thousands of names
        previous, self.connector.devices = self.devices, found  # before announcing: RPCs may follow at once
        for name in set(previous) - set(found):
            self.worker.set_online(name, previous[name].type, False)
        for name, device in found.items():
            self.worker.set_online(name, device.type, True)
        if self._server["enableSubscriptions"]:
            self._subscribe()

    def node_id_for(self, device, expression):
        return self._space.node_id_for(device.node_id, expression)

    def node_for(self, device, expression):
        """The python-opcua Node of a value path or node id (for reads, writes and calls), or None."""
        node_id = self.node_id_for(device, expression)
        return None if node_id is None else self._client.get_node(node_id)

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
                node_id = self.node_id_for(device, entry["value"])
                if node_id is None:
                    self.failures.count("node:%s:%s" % (device.name, entry["key"]),
                                        "OPC-UA connector %s: %s %s: %s found no node under %s"
                                        % (self.name, device.name, entry["key"], entry["value"], device.path))
                    continue
                device.keys.append((section, entry["key"]))
                device.node_ids.append(node_id)
        return device

    def _expression(self, device, source, expression):
        """A name or profile: constant text, `${path}` (the node's value), or text with
        `${path}`s in it (upstream's "Device ${Root\\.Objects\\.Device1\\.serialNumber}")."""
        if expression is None:
            return None
        if source == "constant" or "${" not in str(expression):
            return expression
        if LOOKUP.match(expression.strip()):
            node = self.node_for(device, expression)
            return node.get_value() if node is not None else None
        missing = []

        def value(match):
            node = self.node_for(device, match.group(1))
            if node is None:
                missing.append(match.group(1))
                return ""
            return str(plain(node.get_value()))
        text = TEMPLATE.sub(value, expression)
        return None if missing else text

    # -- reading --------------------------------------------------------------------------
    def _poll(self):
        """Every device's values, BATCH nodes per Read and one record per batch. A poll
        that takes longer than its period is counted (the worker starts the next one late,
        never piles them up)."""
        clock = self.worker.clock
        began = clock()
        self.counts["polls"] += 1
        nodes = 0
        for device in list(self.devices.values()):
            keys, node_ids = device.keys, device.node_ids
            for start in range(0, len(node_ids), BATCH):
                if self._stopping():
                    return
                values = self._space.read(node_ids[start:start + BATCH])
                self._send(device, [(s, k, v) for (s, k), v in zip(keys[start:start + BATCH], values)
                                    if v is not None], None)
            nodes += len(node_ids)
        took, period = clock() - began, self._server["pollPeriodInMillis"] / 1000.0
        if took > period:
            self.counts["poll_overruns"] += 1
            self.failures.count("poll_overrun", "OPC-UA connector %s: a poll of %d nodes took %.1f s, longer than "
                                "pollPeriodInMillis (%d ms); the next one starts late"
                                % (self.name, nodes, took, self._server["pollPeriodInMillis"]))

    def _send(self, device, items, ts):
        """items: (section, key, value) read at `ts` (ms; None = now)."""
        self._send_stamped(device, [(section, key, value, ts) for section, key, value in items])

    def _send_stamped(self, device, items):
        """items: (section, key, value, ts) -> one record: telemetry grouped by ts."""
        if not items:
            return
        self.counts["values"] += len(items)
        data = {"deviceName": device.name, "deviceType": device.type, "values": items, "ts": now_ms()}
        converter = self.connector.converter_for(device.mapping)
        self.connector.emit(device.name, lambda: converter.convert(device.mapping, data), "value",
                            strategy=device.strategy)

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
        from opcua import Node
        try:
            period = self._server["subCheckPeriodInMillis"]
            server = self._client.uaclient
            for device in self.devices.values():
                if device.node_ids and device.subscription is None:
                    handler = DataChange(self, device)  # one per device: a node may serve several
                    device.subscription = self._client.create_subscription(period, handler)
                    for start in range(0, len(device.node_ids), BATCH):
                        if self._stopping():
                            return
                        device.subscription.subscribe_data_change([Node(server, n) for n in
                                                                   device.node_ids[start:start + BATCH]])
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
        result = self._client.get_node(device.node_id).call_method(method_node, *arguments)
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
        self.targets = {}  # type: Dict[Any, Any]  node id -> (section, key), or a list of them
        for key, node_id in zip(device.keys, device.node_ids):
            known = self.targets.get(node_id)
            self.targets[node_id] = key if known is None else (known + [key] if isinstance(known, list)
                                                                 else [known, key])

    def datachange_notification(self, node, value, data):
        targets = self.targets.get(node.nodeid)
        if targets is None:
            return
        ts = None
        try:
            stamp = data.monitored_item.Value.SourceTimestamp
            if stamp is not None:
                ts = (stamp.replace(tzinfo=None) - EPOCH) // MS
        except (AttributeError, TypeError):
            pass
        session = self.session
        with session._notified_lock:  # the worker's flush job sends them, batched
            session.counts["subscription_values"] += 1
            if isinstance(targets, list):
                session._notified.extend((self.device, (section, key, value, ts)) for section, key in targets)
            else:
                session._notified.append((self.device, (targets[0], targets[1], value, ts)))

    def event_notification(self, event):
        pass
