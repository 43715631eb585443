"""The Modbus master's sessions, on their endpoint's DeviceWorker thread: one connection
(a TCP/UDP address or a serial bus) and the slaves polled over it; reads by plan, decoding,
online state, and the RPC and attribute writes queued to that thread."""
import logging
from typing import Any, Dict, List, Optional

from thingsboard_gateway.connectors.kit import now_ms
from thingsboard_gateway.connectors.modbus.downlink import READS, requests_for
from thingsboard_gateway.connectors.modbus.plan import Read
from thingsboard_gateway.connectors.modbus.uplink import ModbusUplinkConverter, tag_decoder
from thingsboard_gateway.connectors.worker import DeviceSession, SessionLost

log = logging.getLogger(__name__)


def _values(function_code, response, count):
    # type: (int, Any, int) -> List[Any]
    """What a read response carries: `count` bits (functions 1, 2) or its registers."""
    return list(response.bits[:count]) if function_code in (1, 2) else list(response.registers)


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
    """One slave on an endpoint: reads its plan, hands the results to its uplink converter,
    keeps its online state, and carries out RPC and attribute writes (on the endpoint's
    thread)."""

    def __init__(self, connector, endpoint, slave):
        self.connector = connector
        self.endpoint = endpoint
        self.slave = slave
        self.name = slave["deviceName"]
        self.period = slave["pollPeriod"] / 1000.0
        self.converter = ModbusUplinkConverter(slave)  # the read plan, and decoding unless custom
        self.custom_uplink = connector.custom_converter(slave, "uplink_converter", "converter")
        self.custom_downlink = connector.custom_converter(slave, "downlink_converter")
        self.online = False
        self.silent_polls = 0
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
        return _values(read.function_code, response, read.count)

    def poll(self):
        self.polls += 1
        results = []  # type: List[Optional[List[Any]]]
        answered = False
        for read in self.converter.reads:
            try:
                results.append(self.read_values(read))
                answered = True
            except ModbusError as e:
                self.connector.failures.count("read:" + self.name, "Modbus slave %s: reading %d registers at %d "
                                                                   "(function %d) failed: %s"
                                              % (self.name, read.count, read.address, read.function_code, e))
                if "exception response" not in str(e):
                    self._silent()
                    return
                answered = True
                results.append(None)
        if self.custom_uplink is not None:
            self._send_custom(results)
            return
        values, failures = self.converter.decode(results)
        for key, reason in failures:
            self.connector.failures.count("decode:%s:%s" % (self.name, key),
                                          "Modbus slave %s: tag %s: %s" % (self.name, key, reason))
        if answered or not self.converter.reads:
            self.silent_polls = 0
            self.set_online(True)
        self._send(values)

    def _send_custom(self, results):
        reads = [{"functionCode": read.function_code, "address": read.address, "values": data}
                 for read, data in zip(self.converter.reads, results) if data is not None]
        self.connector.emit(self.name, lambda: self.custom_uplink.convert(self.slave, {"reads": reads, "ts": now_ms()}),
                            "decode", strategy=self.converter.strategy)

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
        converted = self.converter.record(attributes, telemetry, now_ms())
        if converted is not None:
            self.connector.store(converted)

    # -- writes and RPC (queued to this thread) ------------------------------------------
    def execute(self, tag, value):
        # type: (Dict[str, Any], Any) -> Any
        """Read (function 1-4: returns the value) or write (5, 6, 15, 16) one tag; on the
        endpoint's thread."""
        result = None
        if self.custom_downlink is not None and tag["functionCode"] not in READS:
            requests = self.custom_downlink.convert(self.slave, {"tag": tag, "value": value})
        else:
            requests = requests_for(tag, value, self.slave)
        for method, address, argument in requests:
            response = self.request(method, address, argument)
            if tag["functionCode"] in READS:
                result = tag_decoder(tag, self.slave)(_values(tag["functionCode"], response, argument))
        return result
