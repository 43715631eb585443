"""ModbusConnector: a thread per slave polls it on its own period, so a slave that is down
never delays the others; RPCs and attribute writes run on the slave's thread too (the
pymodbus client is not thread-safe)."""
import logging
import queue
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.modbus import codec
from thingsboard_gateway.connectors.modbus import config as modbus_config
from thingsboard_gateway.connectors.modbus.plan import Read, plan_reads
from thingsboard_gateway.connectors.reporting import FailureLog
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


class SlavePoller(object):
    """One slave: its client, schedule, reads plan, and the tasks queued for its thread."""

    def __init__(self, connector, slave):
        self.connector = connector
        self.slave = slave
        self.name = slave["deviceName"]
        tags = [dict(t, section="attributes") for t in slave["attributes"]] + \
            [dict(t, section="timeseries") for t in slave["timeseries"]]
        self.reads = plan_reads(tags, merge=slave["mergeReads"])
        self.tasks = queue.Queue()  # type: queue.Queue
        self.client = None  # type: Any
        self.online = False
        self.failed_attempts = 0
        self.changes = ChangeFilter() if slave["sendDataOnlyOnChange"] else None
        self.next_full_report = 0.0
        self.polls = 0

    # -- the thread ---------------------------------------------------------------------
    def run(self):
        period = self.slave["pollPeriod"] / 1000.0
        next_poll = time.monotonic()
        stop = self.connector.stop_event
        while not stop.is_set():
            try:
                task = self.tasks.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                task = None
            if stop.is_set():
                break
            if task is not None:
                task()
                continue
            next_poll += period
            if next_poll < time.monotonic():  # fell behind (slave slow): skip, don't pile up
                next_poll = time.monotonic() + period
            self.poll()
        self.close()

    def close(self):
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                log.debug("closing the modbus client failed", exc_info=True)
            self.client = None

    # -- connection -----------------------------------------------------------------------
    def _connected(self):
        # type: () -> bool
        if self.client is not None:
            return True
        slave = self.slave
        if self.failed_attempts >= slave["connectAttemptCount"]:
            if time.monotonic() < self._retry_at:
                return False
            self.failed_attempts = 0
        client = make_client(slave)
        if client.connect():
            self.client = client
            return True
        client.close()
        self.failed_attempts += 1
        if self.failed_attempts >= slave["connectAttemptCount"]:
            self._retry_at = time.monotonic() + slave["waitAfterFailedAttemptsMs"] / 1000.0
        self.connector.failures.count("connect:" + self.name, "Modbus slave %s (%s): cannot connect (attempt %d)"
                                      % (self.name, self._address(), self.failed_attempts))
        self._set_online(False)
        return False

    _retry_at = 0.0

    def _address(self):
        slave = self.slave
        return slave["port"] if slave["type"] == "serial" else "%s:%s/%s" % (slave["host"], slave["port"],
                                                                             slave["type"])

    def _set_online(self, online):
        if online == self.online:
            return
        self.online = online
        if online:
            self.connector.gateway.add_device(self.name, self.slave["deviceType"], self.connector)
        else:
            self.connector.gateway.del_device(self.name)

    def request(self, method, *args):
        """One Modbus request; ModbusError when it fails (the client is then dropped
        so the next poll reconnects)."""
        if not self._connected():
            raise ModbusError("not connected")
        try:
            response = getattr(self.client, method)(*args, unit=self.slave["unitId"])
        except Exception as e:  # pymodbus raises ConnectionException, ModbusIOException, socket errors
            self.close()
            raise ModbusError("%s: %s" % (type(e).__name__, e))
        if response is None or response.isError():
            code = getattr(response, "exception_code", None)
            if code is None:  # no answer in time: treat the link as broken
                self.close()
                raise ModbusError("no answer (%s)" % (response,))
            raise ModbusError("exception response code %d (%s)" % (code, response))
        return response

    # -- polling ------------------------------------------------------------------------
    def read_values(self, read):
        # type: (Read) -> List[Any]
        response = self.request(READS[read.function_code], read.address, read.count)
        return list(response.bits[:read.count]) if read.function_code in (1, 2) else list(response.registers)

    def decode(self, tag, values, offset):
        slave = self.slave
        size = codec.registers_for(tag["type"], tag.get("objectsCount", 1))
        raw = codec.decode(values[offset:offset + size], tag["type"], tag.get("objectsCount", 1),
                           tag.get("byteOrder") or slave["byteOrder"], tag.get("wordOrder") or slave["wordOrder"],
                           tag.get("bitTargetType", "bool"))
        return codec.scale(raw, tag.get("divider"), tag.get("multiplier"))

    def poll(self):
        self.polls += 1
        values = {"attributes": {}, "timeseries": {}}  # type: Dict[str, Dict[str, Any]]
        for read in self.reads:
            try:
                data = self.read_values(read)
            except ModbusError as e:
                self.connector.failures.count("read:" + self.name, "Modbus slave %s: reading %d registers at %d "
                                                                   "(function %d) failed: %s"
                                              % (self.name, read.count, read.address, read.function_code, e))
                if self.client is None:
                    self._set_online(False)
                    return
                continue
            for tag in read.tags:
                try:
                    values[tag["section"]][tag["tag"]] = self.decode(tag, data, tag["address"] - read.address)
                except (ValueError, TypeError) as e:
                    self.connector.failures.count("decode:%s:%s" % (self.name, tag["tag"]),
                                                  "Modbus slave %s: tag %s: %s" % (self.name, tag["tag"], e))
        self._set_online(True)
        self._send(values)

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
            return self.decode(tag, data, 0)
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
        self.pollers = {}  # type: Dict[str, SlavePoller]

    def open(self):
        self.stop_event.clear()
        self.pollers = {s["deviceName"]: SlavePoller(self, s) for s in self._config["master"]["slaves"]}
        for name, poller in self.pollers.items():
            self.start_thread(poller.run, name)

    def close(self):
        self.stop_event.set()
        for poller in self.pollers.values():
            poller.tasks.put(None)  # wake it
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
        poller.tasks.put(task)

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
