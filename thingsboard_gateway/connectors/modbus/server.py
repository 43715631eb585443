"""The gateway as a Modbus slave (upstream's `slave` section) on pymodbus 2.5's server
parts: its request decoder, framers, datastore and request execution; the sockets and
the serial port are served by threads of ours, so that every connection is bounded and
every fault is counted instead of logged with a traceback.

- One block per table (served.py): a read or write outside it gets exception 2
  (illegal data address) from the datastore; the block never grows.
- Unit ids: requests to `unitId` are answered (unitId 0: any unit id is answered, as
  upstream's example expects); unit 0 in a request is a broadcast: writes are applied,
  nothing is answered; other units are ignored (the master times out, as on a bus).
- TCP: a thread per master connection, at most `maxConnections` (more are closed at
  once), each cut after `connectionTimeoutSec` without a request; a listen backlog of
  256; the address is reused on restart. UDP and serial: one thread each.
- ServerSession (the connector kit's DeviceSession) starts and stops the transport and,
  every pollPeriod, reads the attributes and timeseries entries from the block in
  memory (never through the port) and reports them as `deviceName`'s data."""
import itertools
import logging
import select
import socket
import socketserver
import struct
import threading
import time
from typing import Any, Dict, List, Optional, Set

from thingsboard_gateway.connectors.modbus import served
from thingsboard_gateway.connectors.worker import DeviceSession
from thingsboard_gateway.runtime.counters import counted

log = logging.getLogger(__name__)

MAX_PENDING = 4096  # bytes of an unfinished frame a connection may hold before it is cut
SLICE = 0.2  # seconds between looks at the stop flag in the UDP and serial loops


def _pymodbus():
    """pymodbus's server parts, imported when a server starts."""
    from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
    from pymodbus.factory import ServerDecoder
    from pymodbus.framer.ascii_framer import ModbusAsciiFramer
    from pymodbus.framer.rtu_framer import ModbusRtuFramer
    from pymodbus.framer.socket_framer import ModbusSocketFramer
    from pymodbus.pdu import ModbusExceptions
    return (ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext, ServerDecoder,
            {"socket": ModbusSocketFramer, "rtu": ModbusRtuFramer, "ascii": ModbusAsciiFramer}, ModbusExceptions)


class ServedImage(object):
    """The four blocks, each behind a lock (a master's multi-register write and the
    gateway's report never see half a value)."""

    def __init__(self, slave):
        # type: (Dict[str, Any]) -> None
        block_class, _, slave_context, _, _, _ = _pymodbus()
        self.entries = served.entries(slave)
        self.lock = threading.Lock()
        image = self

        class LockedBlock(block_class):
            def __init__(self, start, values):
                block_class.__init__(self, start, values or [0])  # pymodbus needs one value at least
                self.size = len(values)

            def validate(self, address, count=1):
                return count >= 1 and self.address <= address and address + count <= self.address + self.size

            def getValues(self, address, count=1):
                with image.lock:
                    return block_class.getValues(self, address, count)

            def setValues(self, address, values):
                with image.lock:
                    block_class.setValues(self, address, values)

        self.blocks = {table: LockedBlock(start, values) for table, (start, values) in served.blocks(self.entries).items()}
        self.context = slave_context(zero_mode=True, **self.blocks)

    def read(self, entry):
        # type: (served.Entry) -> Any
        return served.decode(entry, self.blocks[entry.table].getValues(entry.address, entry.width))

    def write(self, entry, value):
        # type: (served.Entry, Any) -> None
        """ValueError when the type cannot hold `value`."""
        self.blocks[entry.table].setValues(entry.address, served.encode(entry, value))


class Responder(object):
    """Executes decoded requests against the image, by the unit-id rules above."""

    def __init__(self, image, unit, failures, name):
        # type: (ServedImage, int, Any, str) -> None
        _, server_context, _, decoder, framers, exceptions = _pymodbus()
        self.context = server_context(slaves=image.context, single=True)
        self.unit = unit
        self.failures = failures
        self.name = name
        self.decoder = decoder
        self.framers = framers
        self.failure_code = exceptions.SlaveFailure
        self._requests = itertools.count()  # served requests; the server's threads count

    @property
    def requests(self):
        # type: () -> int
        return counted(self._requests)

    def framer(self, method):
        return self.framers[method](self.decoder(), client=None)

    def answer(self, request):
        """The response to send, or None (broadcast, another unit)."""
        unit = request.unit_id
        if unit != 0 and self.unit not in (0, unit):
            self.failures.count("server_other_unit", "%s: requests for unit %d ignored (this slave is unit %d)"
                                % (self.name, unit, self.unit))
            return None
        next(self._requests)
        try:
            response = request.execute(self.context[unit])
        except Exception as e:  # pymodbus's own failure on a strange request: exception 4, counted
            self.failures.count("server_request", "%s: request %s failed: %s: %s"
                                % (self.name, type(request).__name__, type(e).__name__, e))
            response = request.doException(self.failure_code)
        if unit == 0:
            return None  # broadcast: applied, never answered
        if response.isError():  # an ExceptionResponse: illegal address, value, function
            self.failures.count("server_exception_%d" % response.exception_code,
                                "%s: answered %s with Modbus exception %d"
                                % (self.name, type(request).__name__, response.exception_code))
        response.transaction_id = request.transaction_id
        response.unit_id = unit
        return response

    def feed(self, framer, data, send):
        """Frame `data`; send(bytes) each answer. False when the peer is to be cut
        (garbage that never makes a frame)."""
        def on_request(request):
            response = self.answer(request)
            if response is not None and response.should_respond:
                send(framer.buildPacket(response))
        try:
            framer.processIncomingPacket(data, on_request, [self.unit], single=True)
            while data and len(framer._buffer) and framer.isFrameReady():  # RTU frames one per call
                before = len(framer._buffer)
                framer.processIncomingPacket(b"", on_request, [self.unit], single=True)
                if len(framer._buffer) >= before:
                    break
        except Exception as e:  # a malformed frame: pymodbus raises several kinds
            self.failures.count("server_malformed", "%s: malformed frame dropped: %s: %s"
                                % (self.name, type(e).__name__, e))
            framer.resetFrame()
        if len(framer._buffer) > MAX_PENDING:  # pymodbus 2.5 framers keep a partial frame in _buffer
            self.failures.count("server_malformed", "%s: %d bytes without a frame: dropped"
                                % (self.name, len(framer._buffer)))
            framer.resetFrame()
            return False
        return True


class _TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    request_queue_size = 256
    daemon_threads = False
    block_on_close = True

    def __init__(self, address, responder, settings):
        self.responder = responder
        self.settings = settings
        self.open = set()  # type: Set[socket.socket]
        self.open_lock = threading.Lock()
        socketserver.ThreadingTCPServer.__init__(self, address, _Connection)

    def verify_request(self, request, client_address):
        with self.open_lock:
            if len(self.open) >= self.settings["maxConnections"]:
                self.responder.failures.count("server_busy", "%s: %d masters connected already: one refused"
                                              % (self.responder.name, len(self.open)))
                return False
            self.open.add(request)
        return True

    def shutdown_request(self, request):
        with self.open_lock:
            self.open.discard(request)
        socketserver.ThreadingTCPServer.shutdown_request(self, request)

    def handle_error(self, request, client_address):
        import sys
        error = sys.exc_info()[1]
        self.responder.failures.count("server_connection", "%s: master %s: %s: %s" % (
            self.responder.name, client_address[0], type(error).__name__, error))

    def cut_all(self):
        with self.open_lock:
            sockets = list(self.open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Connection(socketserver.BaseRequestHandler):
    """One master's TCP connection, bounded in idle time and unfinished bytes."""

    def handle(self):
        server = self.server
        sock = self.request
        # The idle bound as the kernel's receive timeout, on a blocking socket: a Python
        # timeout would add a poll() to every recv and send (a third more CPU per request).
        idle = server.settings["connectionTimeoutSec"]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                        struct.pack("ll", int(idle), int((idle - int(idle)) * 1e6)))
        framer = server.responder.framer(server.settings["method"])
        while True:
            try:
                data = sock.recv(1024)
            except (socket.timeout, BlockingIOError):  # SO_RCVTIMEO ran out: EAGAIN
                server.responder.failures.count("server_idle", "%s: master %s idle for %.0f s: disconnected" % (
                    server.responder.name, self.client_address[0], server.settings["connectionTimeoutSec"]))
                return
            except OSError:
                return
            if not data or not server.responder.feed(framer, data, sock.sendall):
                return


class ServerSession(DeviceSession):
    """The served block on one worker thread: the transport starts in connect() and
    stops in disconnect(); the job "report" sends the entries to ThingsBoard."""

    def __init__(self, connector, slave):
        # type: (Any, Dict[str, Any]) -> None
        self.connector = connector
        self.slave = slave
        self.name = slave["deviceName"]
        self.image = ServedImage(slave)  # values as configured: nothing persists across a restart
        self.responder = Responder(self.image, slave["unitId"], connector.failures,
                                   "Modbus slave %s" % self.name)
        self._tcp = None  # type: Optional[_TcpServer]
        self._threads = []  # type: List[threading.Thread]
        self._stop = threading.Event()
        self.by_tag = {}  # type: Dict[str, Dict[str, served.Entry]]  section -> tag -> entry
        for entry in self.image.entries:
            self.by_tag.setdefault(entry.section, {}).setdefault(entry.tag, entry)
        self.reported = [e for e in self.image.entries if e.section in ("attributes", "timeseries")]

    @property
    def endpoint(self):
        # type: () -> str
        slave = self.slave
        return "slave-%s" % (slave["port"] if slave["type"] == "serial" else "%s:%s" % (slave["type"], slave["port"]))

    # -- DeviceSession --------------------------------------------------------------------
    def connect(self):
        self._stop.clear()
        slave = self.slave
        if slave["type"] == "tcp":
            self._tcp = _TcpServer((slave["host"], slave["port"]), self.responder, slave)
            self._start(self._tcp.serve_forever, "tcp")
        elif slave["type"] == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((slave["host"], slave["port"]))
            self._start(lambda: self._serve_udp(sock), "udp")
        else:
            import serial
            port = serial.Serial(port=slave["port"], baudrate=slave["baudrate"], bytesize=slave["bytesize"],
                                 parity=slave["parity"], stopbits=slave["stopbits"], timeout=SLICE)
            self._start(lambda: self._serve_serial(port), "serial")
        log.info("Modbus slave %s serving %s (unit %d)", self.name, self.endpoint, slave["unitId"])
        # The device is connected either way (ThingsBoard's RPCs and attribute updates reach
        # the registers); sendDataToThingsBoard only decides whether its values are reported.
        self.worker.set_online(self.name, slave["deviceType"], True)
        if slave["sendDataToThingsBoard"]:
            self.worker.schedule.add("report", slave["pollPeriod"] / 1000.0)

    def disconnect(self):
        self._stop.set()
        if self._tcp is not None:
            self._tcp.shutdown()  # the accept loop
            self._tcp.cut_all()  # every master's connection, so their threads end now
            self._tcp.server_close()  # joins them
            self._tcp = None
        for thread in self._threads:
            thread.join(5.0)
        self._threads = []
        self.worker.schedule.remove("report")

    def run_job(self, key):
        data = served.report(self.slave, self.reported, self.image.read, int(time.time() * 1000))
        self.connector.store(data)

    # -- platform requests (on the worker's thread) ---------------------------------------
    def write_attribute(self, key, value):
        entry = self.by_tag.get("attributeUpdates", {}).get(key)
        if entry is not None:
            self.image.write(entry, value)  # the full width of its type

    def rpc(self, method, params):
        # type: (str, Any) -> Dict[str, Any]
        entry = self.by_tag.get("rpc", {}).get(method)
        if entry is None:
            return {"error": "no rpc entry %s on Modbus slave %s" % (method, self.name)}
        if entry.function in served.READ_FUNCTIONS:
            return {"result": {"value": self.image.read(entry)}}
        value = params.get("value") if isinstance(params, dict) and "value" in params else params
        self.image.write(entry, value)
        return {"result": {"value": params}}

    # -- transports -----------------------------------------------------------------------
    def _start(self, target, kind):
        thread = threading.Thread(target=self._guarded, args=(target, kind), name="modbus-slave-%s-%s" % (
            kind, self.name))
        thread.start()
        self._threads.append(thread)

    def _guarded(self, target, kind):
        try:
            target()
        except Exception as e:  # the port or socket broke under us: counted; the worker restarts it
            self.connector.failures.count("server_" + kind, "Modbus slave %s: %s: %s" % (self.name,
                                                                                         type(e).__name__, e))
            self.worker.submit(self._lose)

    def _lose(self):
        from thingsboard_gateway.connectors.worker import SessionLost
        raise SessionLost("the %s transport stopped" % self.slave["type"])

    def _serve_udp(self, sock):
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([sock], [], [], SLICE)
                if not ready:
                    continue
                data, peer = sock.recvfrom(2048)
                self.responder.feed(self.responder.framer(self.slave["method"]), data,
                                    lambda packet, peer=peer: sock.sendto(packet, peer))
        finally:
            sock.close()

    def _serve_serial(self, port):
        framer = self.responder.framer(self.slave["method"])
        try:
            while not self._stop.is_set():
                data = port.read(max(1, port.in_waiting))
                if data:
                    self.responder.feed(framer, data, port.write)
                elif len(framer._buffer):
                    framer.resetFrame()  # a silent interval ends any frame (RTU: 3.5 characters)
        finally:
            port.close()
