"""ModbusConnector: a thread per slave polls it on its own period, so a slave that is down
never delays the others; RPCs and attribute writes run on the slave's thread too (the
pymodbus client is not thread-safe)."""
import logging
import queue
import struct
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.modbus import codec
from thingsboard_gateway.connectors.modbus import config as modbus_config
from thingsboard_gateway.connectors.modbus.plan import Read, plan_reads
from thingsboard_gateway.runtime.failures import FailureLog
from thingsboard_gateway.conversion.mapping import ChangeFilter

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


class Endpoint(object):
    """One connection (TCP/UDP address or serial bus), its thread and the slaves on it.

    The thread polls each slave when its period is due and runs queued tasks (RPC,
    attribute writes) in between. Different endpoints have their own threads, so a host
    that is down never delays the others; on one endpoint, a slave that stops answering
    is set aside for waitAfterFailedAttemptsMs after connectAttemptCount failures.
    """

    def __init__(self, connector, key, slaves):
        self.connector = connector
        self.key = key
        self.settings = slaves[0]  # connection settings come from the first slave
        self.pollers = [SlavePoller(connector, self, s) for s in slaves]
        self.tasks = queue.Queue()  # type: queue.Queue
        self.client = None  # type: Any
        self.failed_connects = 0
        self.retry_connect_at = 0.0

    def run(self):
        stop = self.connector.stop_event
        now = time.monotonic()
        for poller in self.pollers:
            poller.next_poll = now
        while not stop.is_set():
            due = min(p.next_poll for p in self.pollers)
            try:
                task = self.tasks.get(timeout=max(0.0, due - time.monotonic()))
            except queue.Empty:
                task = None
            if stop.is_set():
                break
            if task is not None:
                task()
                continue
            now = time.monotonic()
            for poller in self.pollers:
                if poller.next_poll <= now:
                    poller.advance(now)
                    poller.poll()
        self.close()

    def close(self):
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                log.debug("closing the modbus client failed", exc_info=True)
            self.client = None

    def connected(self):
        # type: () -> bool
        if self.client is not None:
            return True
        settings = self.settings
        if self.failed_connects >= settings["connectAttemptCount"]:
            if time.monotonic() < self.retry_connect_at:
                return False
            self.failed_connects = 0
        client = make_client(settings)
        if client.connect():
            self.client = client
            return True
        client.close()
        self.failed_connects += 1
        if self.failed_connects >= settings["connectAttemptCount"]:
            self.retry_connect_at = time.monotonic() + settings["waitAfterFailedAttemptsMs"] / 1000.0
        for poller in self.pollers:
            self.connector.failures.count("connect:" + poller.name, "Modbus slave %s (%s): cannot connect "
                                          "(attempt %d)" % (poller.name, self.key, self.failed_connects))
            poller.set_online(False)
        return False

    def request(self, unit, method, *args):
        """One Modbus request; ModbusError when it fails (a broken link drops the client
        so the next poll reconnects)."""
        if not self.connected():
            raise ModbusError("not connected")
        try:
            response = getattr(self.client, method)(*args, unit=unit)
        except Exception as e:  # pymodbus raises ConnectionException, ModbusIOException, socket errors
            self.close()
            raise ModbusError("%s: %s" % (type(e).__name__, e))
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
        self.next_poll = 0.0
        self.polls = 0

    def advance(self, now):
        self.next_poll += self.period
        if self.next_poll < now:  # fell behind (slow bus): skip, don't pile up
            self.next_poll = now + self.period

    def set_online(self, online):
        if online == self.online:
            return
        self.online = online
        if online:
            self.connector.gateway.add_device(self.name, self.slave["deviceType"], self.connector)
        else:
            self.connector.gateway.del_device(self.name)

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
            self.next_poll = time.monotonic() + self.slave["waitAfterFailedAttemptsMs"] / 1000.0
            self.silent_polls = 0

    def _send(self, values):
        attributes, telemetry = values["attributes"], values["timeseries"]
        if self.changes is not None:
            now = time.monotonic()
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
        """Read (function 1-4: returns the value) or write (5, 6, 15, 16) one tag."""
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
        self.endpoints = []  # type: List[Endpoint]
        self.pollers = {}  # type: Dict[str, SlavePoller]

    def open(self):
        self.stop_event.clear()
        groups = {}  # type: Dict[str, List[Dict[str, Any]]]
        for slave in self._config["master"]["slaves"]:
            groups.setdefault(endpoint_key(slave), []).append(slave)
        self.endpoints = [Endpoint(self, key, slaves) for key, slaves in groups.items()]
        self.pollers = {p.name: p for e in self.endpoints for p in e.pollers}
        for endpoint in self.endpoints:
            self.start_thread(endpoint.run, endpoint.key)

    def close(self):
        self.stop_event.set()
        for endpoint in self.endpoints:
            endpoint.tasks.put(None)  # wake it
        self.join_threads(5.0)

    def statistics(self):
        values = {"polls": sum(p.polls for p in self.pollers.values()),
                  "slaves_online": sum(1 for p in self.pollers.values() if p.online)}
        for kind, count in self.failures.snapshot().items():
            values["failures_" + kind] = count
        return values

    # -- platform requests --------------------------------------------------------------
    def _run_on(self, poller, work, reply):
        """Queue `work` (returning the reply content) to the slave's thread."""
        def task():
            try:
                content = work()
            except (ModbusError, ValueError, TypeError) as e:
                content = {"error": str(e)}
            if reply is not None:
                reply(content)
        poller.endpoint.tasks.put(task)

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

        self._run_on(poller, work, reply)

    def on_attributes_update(self, content):
        device, data = content.get("device"), content.get("data") or {}
        poller = self.pollers.get(device)
        if poller is None:
            return
        for key, value in data.items():
            tag = next((t for t in poller.slave["attributeUpdates"] if t["tag"] == key), None)
            if tag is not None:
                self._run_on(poller, lambda t=tag, v=value: poller.execute(t, v), None)
