"""The soak benchmark's failing connector: each instance holds what real connectors hold
(a socket, a file, a thread) and its thread dies soon after open(), so the supervisor
closes it and starts a new one. Anything close() or the supervisor fails to release
shows up as file descriptors, threads or memory that grow with every restart."""
import socket
import tempfile

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
from thingsboard_gateway.connectors.mqtt.connector import MqttConnector


class FlakyConnector(Connector):
    """config: {"port": a TCP port to connect to (the platform broker)}."""

    def open(self):
        self.stop_event.clear()
        self._socket = socket.create_connection(("127.0.0.1", int(self.config["port"])), timeout=2)
        self._file = tempfile.TemporaryFile()
        self._file.write(b"x" * 4096)
        self.start_thread(self._run)

    def _run(self):
        self.stop_event.wait(0.005)
        if not self.stop_event.is_set():
            raise RuntimeError("simulated failure")  # the thread dies: the supervisor restarts us

    def close(self):
        self.stop_event.set()
        self.join_threads(2.0)
        self._socket.close()
        self._file.close()


def _failing_soon(connector, seconds=0.02):
    """A watched thread that dies after `seconds` unless the connector is stopping."""
    def fail():
        if not connector.stop_event.wait(seconds):
            raise RuntimeError("simulated failure")
    connector.start_thread(fail, "fail")


class FlakyMqttConnector(MqttConnector):
    """The real MQTT connector (paho client, its threads and socket), failing after open."""

    def open(self):
        super(FlakyMqttConnector, self).open()
        _failing_soon(self)


class FlakyModbusConnector(ModbusConnector):
    """The real Modbus connector (a worker thread per endpoint, pymodbus clients), failing
    after open."""

    def open(self):
        super(FlakyModbusConnector, self).open()
        _failing_soon(self)
