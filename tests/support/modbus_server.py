"""pymodbus's own Modbus servers (TCP, UDP, RTU over a socat pseudo-terminal pair) for tests."""
import os
import threading

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server.sync import ModbusSerialServer, ModbusTcpServer, ModbusUdpServer

from tests.support.broker import free_port, wait_port
from tests.support.serial_line import pty_pair


class CountingBlock(ModbusSequentialDataBlock):
    """A data block that counts the reads it serves (to see merged requests)."""

    def __init__(self, size=2000):
        super(CountingBlock, self).__init__(0, [0] * size)
        self.reads = 0

    def getValues(self, address, count=1):
        self.reads += 1
        return super(CountingBlock, self).getValues(address, count)


class ModbusServer(object):
    """kind: tcp | udp | rtu. For rtu, `client_port` is the tty path the gateway opens."""

    def __init__(self, kind="tcp", unit=1, port=None):
        self.kind = kind
        self.blocks = {"co": CountingBlock(), "di": CountingBlock(), "hr": CountingBlock(), "ir": CountingBlock()}
        self.slave = ModbusSlaveContext(zero_mode=True, **self.blocks)
        context = ModbusServerContext(slaves={unit: self.slave}, single=False)
        self.port = port or free_port()
        self._socat = None
        if kind == "tcp":
            self.server = ModbusTcpServer(context, address=("127.0.0.1", self.port), allow_reuse_address=True)
        elif kind == "udp":
            self.server = ModbusUdpServer(context, address=("127.0.0.1", self.port))
        else:
            base = "/tmp/tbgw-pty-%d-%d" % (os.getpid(), self.port)
            self.server_port, self.client_port = base + "-a", base + "-b"
            self._socat = pty_pair(self.server_port, self.client_port)
            self.server = ModbusSerialServer(context, framer=ModbusRtuFramer, port=self.server_port,
                                             baudrate=19200, timeout=0.05)
        self.thread = threading.Thread(target=self.server.serve_forever, name="modbus-server", daemon=True)
        self.thread.start()
        if kind == "tcp" and not wait_port(self.port):
            raise RuntimeError("modbus server did not start")

    def set(self, kind, address, values):
        """kind: co, di, hr, ir."""
        self.blocks[kind].setValues(address, values)

    def get(self, kind, address, count=1):
        return self.blocks[kind].values[address:address + count]

    def stop(self):
        try:
            if self.kind == "rtu":
                self.server.server_close()
            else:
                self.server.shutdown()
                self.server.server_close()
        except Exception:
            pass
        self.thread.join(5)
        if self._socat is not None:
            self._socat.terminate()
            self._socat.wait(5)
