"""ModbusConnector: one DeviceWorker (thread) per endpoint polls each slave on it on its
own period, so a host that is down never delays the others; RPCs and attribute writes
run on the endpoint's thread too (the pymodbus client is not thread-safe)."""
import logging
import struct
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.modbus import codec
from thingsboard_gateway.connectors.modbus import config as modbus_config
from thingsboard_gateway.connectors.modbus.plan import Read, plan_reads
from thingsboard_gateway.connectors.worker import DeviceSession, DeviceWorker, SessionLost
from thingsboard_gateway.conversion.mapping import ChangeFilter
from thingsboard_gateway.runtime.backoff import AttemptsBackoff
from thingsboard_gateway.runtime.failures import FailureLog

log = logging.getLogger(__name__)

READS = {1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers", 4: "read_input_registers"}


class ModbusError(Exception):
    """A request failed: no answer, or a Modbus exception response."""


def make_client(slave):
    # type: (Dict[str, Any]) -> Any
    """The pymodbus 2.5 synchronous client for a slave config."""
    from pymodbus.client.sync import ModbusSerialClient, ModbusTcpClient, ModbusUdpClient
    from pymodbus.framer.ascii_framer import ModbusAsciiFramer
    from pymodbus.framer.rtu_framer import ModbusRtuFramer
    from pymodbus.framer.socket_framer import ModbusSocketFramer
    timeout = float(slave["timeout"])
    if slave["type"] == "serial":
        return ModbusSerialClient(method=slave["method"] if slave["method"] in ("rtu", "ascii") else "rtu",
                                  port=slave["port"], baudrate=slave["baudrate"], bytesize=slave["bytesize"],
                                  parity=slave["parity"], stopbits=slave["stopbits"], timeout=timeout,
                                  retries=slave["retries"])
    framer = {"rtu": ModbusRtuFramer, "ascii": ModbusAsciiFramer}.get(slave["method"], ModbusSocketFramer)
    cls = ModbusUdpClient if slave["type"] == "udp" else ModbusTcpClient
    return cls(slave["host"], port=slave["port"], framer=framer, timeout=timeout, retries=slave["retries"],
               retry_on_empty=True)


def endpoint_key(slave):
    # type: (Dict[str, Any]) -> str
    """Slaves behind one TCP/UDP address or on one serial bus share a client and a thread:
    a bus answers one request at a time anyway."""
    if slave["type"] == "serial":
        return slave["port"]
    return "%s:%s:%s" % (slave["type"], slave["host"], slave["port"])


class EndpointSession(DeviceSession):
    """One connection (TCP/UDP address or serial bus) and the slaves on it, served by one
    DeviceWorker: different endpoints have their own threads, so a host that is down
    never delays the others; on one endpoint, a slave that stops answering is set aside
    for waitAfterFailedAttemptsMs after connectAttemptCount silent polls."""

    def __init__(self, connector, key, slaves):
        self.connector = connector
        self.key = key
        self.settings = slaves[0]  # connection settings come from the first slave
        self.pollers = [SlavePoller(connector, self, s) for s in slaves]
        self._by_name = {p.name: p for p in self.pollers}
        self.client = None  # type: Any

    def connect(self):
        client = make_client(self.settings)
        if not client.connect():
            client.close()
            raise ModbusError("no connection")
        self.client = client
        for poller in self.pollers:
            if poller.name not in self.worker.schedule:
                self.worker.schedule.add(poller.name, poller.period)

    def connect_failed(self, reason):
        for poller in self.pollers:  # counted per slave: connect:<deviceName>
            self.connector.failures.count("connect:" + poller.name, "Modbus slave %s (%s): cannot connect: %s"
                                          % (poller.name, self.key, reason))

    def disconnect(self):
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.debug("closing the modbus client failed", exc_info=True)
        for poller in self.pollers:
            poller.set_online(False)

    def run_job(self, key):
        self._by_name[key].poll()

    def request(self, unit, method, *args):
        """One Modbus request; ModbusError when it fails, SessionLost when the link broke."""
        if self.client is None:
            raise ModbusError("not connected")
        try:
            response = getattr(self.client, method)(*args, unit=unit)
        except Exception as e:  # pymodbus raises ConnectionException, ModbusIOException, socket errors
            raise SessionLost("%s: %s" % (type(e).__name__, e))
        if response is None or response.isError():
            code = getattr(response, "exception_code", None)
            if code is None:
                raise ModbusError("no answer (%s)" % (response,))
            raise ModbusError("exception response code %d (%s)" % (code, response))
        return response


class SlavePoller(object):
    """One slave: its schedule, reads plan, compiled decoders and online state."""

    def __init__(self, connector, endpoint, slave):
        self.connector = connector
        self.endpoint = endpoint
        self.slave = slave
        self.name = slave["deviceName"]
        self.period = slave["pollPeriod"] / 1000.0
        tags = [dict(t, section="attributes") for t in slave["attributes"]] + \
            [dict(t, section="timeseries") for t in slave["timeseries"]]
        self.reads = plan_reads(tags, merge=slave["mergeReads"])
        # Per read: (section, key, offset in the read, decoder), compiled once.
        self.decoders = [[(t["section"], t["tag"], t["address"] - read.address, self.decoder(t)) for t in read.tags]
                         for read in self.reads]
        self.online = False
        self.silent_polls = 0
        self.changes = ChangeFilter() if slave["sendDataOnlyOnChange"] else None
        self.next_full_report = 0.0
        self.polls = 0

    def set_online(self, online):
        self.online = online
        self.endpoint.worker.set_online(self.name, self.slave["deviceType"], online)

    def request(self, method, *args):
        return self.endpoint.request(self.slave["unitId"], method, *args)

    # -- polling ------------------------------------------------------------------------
    def read_values(self, read):
        # type: (Read) -> List[Any]
        response = self.request(READS[read.function_code], read.address, read.count)
        return list(response.bits[:read.count]) if read.function_code in (1, 2) else list(response.registers)

    def decoder(self, tag):
        slave = self.slave
        return codec.compile_decoder(tag["type"], tag.get("objectsCount", 1),
                                     tag.get("byteOrder") or slave["byteOrder"],
                                     tag.get("wordOrder") or slave["wordOrder"], tag.get("bitTargetType", "bool"),
                                     tag.get("divider"), tag.get("multiplier"))

    def poll(self):
        self.polls += 1
        values = {"attributes": {}, "timeseries": {}}  # type: Dict[str, Dict[str, Any]]
        answered = False
        for read, decoders in zip(self.reads, self.decoders):
            try:
                data = self.read_values(read)
            except ModbusError as e:
                self.connector.failures.count("read:" + self.name, "Modbus slave %s: reading %d registers at %d "
                                                                   "(function %d) failed: %s"
                                              % (self.name, read.count, read.address, read.function_code, e))
                if "exception response" in str(e):
                    answered = True
                    continue
                self._silent()
                return
            answered = True
            for section, key, offset, decode in decoders:
                try:
                    values[section][key] = decode(data[offset:])
                except (ValueError, TypeError, struct.error) as e:
                    self.connector.failures.count("decode:%s:%s" % (self.name, key),
                                                  "Modbus slave %s: tag %s: %s" % (self.name, key, e))
        if answered or not self.reads:
            self.silent_polls = 0
            self.set_online(True)
        self._send(values)

    def _silent(self):
        """No answer: after connectAttemptCount silent polls, set the slave aside for
        waitAfterFailedAttemptsMs so that it does not hold up its bus."""
        self.silent_polls += 1
        if self.silent_polls >= self.slave["connectAttemptCount"]:
            self.set_online(False)
            worker = self.endpoint.worker
            worker.schedule.postpone(self.name, worker.clock() + self.slave["waitAfterFailedAttemptsMs"] / 1000.0)
            self.silent_polls = 0

    def _send(self, values):
        attributes, telemetry = values["attributes"], values["timeseries"]
        if self.changes is not None:
            now = self.endpoint.worker.clock()
            if now >= self.next_full_report:
                self.next_full_report = now + self.slave["fullReportPeriodMs"] / 1000.0
                self.changes.changed(self.name, "attributes", attributes)
                self.changes.changed(self.name, "timeseries", telemetry)
            else:
                attributes = self.changes.changed(self.name, "attributes", attributes)
                telemetry = self.changes.changed(self.name, "timeseries", telemetry)
        if not attributes and not telemetry:
            return
        self.connector.gateway.send_to_storage(self.connector.name, self.connector.id, {
            "deviceName": self.name, "deviceType": self.slave["deviceType"],
            "telemetry": [{"ts": int(time.time() * 1000), "values": telemetry}] if telemetry else [],
            "attributes": attributes})

    # -- writes and RPC (queued to this thread) ------------------------------------------
    def execute(self, tag, value):
        # type: (Dict[str, Any], Any) -> Any
        """Read (function 1-4: returns the value) or write (5, 6, 15, 16) one tag; on the
        endpoint's thread."""
        code = tag["functionCode"]
        count = tag.get("objectsCount", 1)
        if code in READS:
            size = codec.registers_for(tag["type"], count)
            data = self.read_values(Read(code, tag["address"], size, [tag]))
            return self.decoder(tag)(data)
        encoded = codec.encode(value, tag["type"], count, tag.get("byteOrder") or self.slave["byteOrder"],
                               tag.get("wordOrder") or self.slave["wordOrder"])
        if code == 5:
            self.request("write_coil", tag["address"], bool(encoded[0]))
        elif code == 15:
            self.request("write_coils", tag["address"], [bool(b) for b in encoded])
        elif code == 6:
            if len(encoded) == 1:
                self.request("write_register", tag["address"], encoded[0])
            else:
                self.request("write_registers", tag["address"], encoded)
        else:
            self.request("write_registers", tag["address"], encoded)
        return None


class ModbusConnector(Connector):
    """Upstream-compatible Modbus master (see README.md beside this file)."""

    @staticmethod
    def load_config(config, file, warnings=None):
        return modbus_config.load(config, file, warnings)

    @staticmethod
    def describe_config(config):
        slaves = config["master"]["slaves"]
        return "%d slave(s): %s" % (len(slaves), ", ".join(
            "%s (%s, %d tags every %d ms)" % (s["deviceName"], s["type"], len(s["attributes"]) + len(s["timeseries"]),
                                             s["pollPeriod"]) for s in slaves))

    def __init__(self, gateway, config, connector_type):
        super(ModbusConnector, self).__init__(gateway, config, connector_type)
        self._config = modbus_config.load(config, config.get("configuration", "modbus.json"))
        self.failures = FailureLog(log)
        self.endpoints = []  # type: List[EndpointSession]
        self.pollers = {}  # type: Dict[str, SlavePoller]

    def open(self):
        self.stop_event.clear()
        groups = {}  # type: Dict[str, List[Dict[str, Any]]]
        for slave in self._config["master"]["slaves"]:
            groups.setdefault(endpoint_key(slave), []).append(slave)
        self.endpoints = [EndpointSession(self, key, slaves) for key, slaves in groups.items()]
        self.pollers = {p.name: p for e in self.endpoints for p in e.pollers}
        for endpoint in self.endpoints:
            settings = endpoint.settings
            backoff = AttemptsBackoff(settings["connectAttemptCount"], settings["pollPeriod"] / 1000.0,
                                      settings["waitAfterFailedAttemptsMs"] / 1000.0)
            DeviceWorker(self, endpoint.key, endpoint, backoff, self.failures).start()

    def close(self):
        self.stop_event.set()
        for endpoint in self.endpoints:
            endpoint.worker.wake()
        self.join_threads(5.0)

    def is_connected(self):
        return any(e.worker is not None and e.worker.connected for e in self.endpoints)

    def statistics(self):
        values = {"polls": sum(p.polls for p in self.pollers.values()),
                  "slaves_online": sum(1 for p in self.pollers.values() if p.online)}
        for kind, count in self.failures.snapshot().items():
            values["failures_" + kind] = count
        return values

    # -- platform requests (run on the slave's endpoint thread) ---------------------------
    def server_side_rpc_handler(self, content):
        device, data = content.get("device"), content.get("data") or {}
        request_id, method, params = data.get("id"), data.get("method"), data.get("params")
        poller = self.pollers.get(device)

        def reply(result):
            self.gateway.send_rpc_reply(device, request_id, result)

        if poller is None:
            reply({"error": "unknown Modbus device %s" % device})
            return
        tag = next((t for t in poller.slave["rpc"] if t["tag"] == method), None)
        value = params
        if tag is None and isinstance(params, dict) and "functionCode" in params and "address" in params:
            tag = dict(params)  # the generic form: {"tag", "type", "functionCode", "address", ...}
            tag.setdefault("type", "16int")
            value = params.get("value")
        elif isinstance(params, dict) and "value" in params:
            value = params["value"]
        if tag is None:
            reply({"error": "no rpc entry for method %s on %s" % (method, device)})
            return

        def work():
            result = poller.execute(tag, value)
            return {"success": True} if tag["functionCode"] not in (1, 2, 3, 4) else {"value": result}

        poller.endpoint.worker.submit(work, reply)

    def on_attributes_update(self, content):
        device, data = content.get("device"), content.get("data") or {}
        poller = self.pollers.get(device)
        if poller is None:
            return
        for key, value in data.items():
            tag = next((t for t in poller.slave["attributeUpdates"] if t["tag"] == key), None)
            if tag is not None:
                poller.endpoint.worker.submit(lambda t=tag, v=value: poller.execute(t, v))
