"""A listening connector in one file, on the connector kit: devices connect over TCP and send
lines "<device name> <number>"; each line is telemetry {key: number} of that device.

tb_gateway.json: {"name": "Lines", "type": "linecounter", "class": "LineCounterConnector",
                  "configuration": "linecounter.json"}
linecounter.json: {"port": 5100, "key": "count", "deviceType": "counter"}
RPC "send" (params: text) and the shared attribute "display" are written to the device's
connection, on the kit's io thread.
"""
import select
import socket

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.kit import ListeningConnector, now_ms
from thingsboard_gateway.conversion.framing import Framer


class LineCounterConnector(ListeningConnector):
    default_file = "linecounter.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        if not isinstance(config.get("port"), int) or not 0 < config["port"] < 65536:
            raise ConfigError(file, "port", "expected a TCP port number")
        return dict({"host": "127.0.0.1", "key": "count", "deviceType": "default"}, **config)

    def __init__(self, gateway, config, connector_type):
        super(LineCounterConnector, self).__init__(gateway, config, connector_type)
        self.connections = {}  # device name -> its socket (the last it spoke on)
        self.listener = None

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((self.settings["host"], self.settings["port"]))
        self.listener.listen(16)
        self.start_thread(self.serve, "tcp")

    def stopping(self):  # select() below returns at once: the thread ends
        if self.listener is not None:
            self.listener.close()

    def serve(self):
        """The connector's thread: accept, read and convert; every socket non-blocking."""
        framers = {self.listener: None}
        while not self.stop_event.is_set():
            try:
                readable = select.select(list(framers), [], [], 0.5)[0]
                for sock in readable:
                    if sock is self.listener:
                        client = sock.accept()[0]
                        client.setblocking(False)
                        framers[client] = Framer(b"\n", None, 1024)
                        continue
                    try:
                        data = sock.recv(4096)
                    except OSError:  # reset by the device: as closed
                        data = b""
                    if not data:
                        del framers[sock]
                        sock.close()
                    for line in framers[sock].feed(data) if data else ():
                        self.line(sock, line)
            except (OSError, ValueError):  # the listener, closed by stopping()
                pass
        for sock in framers:
            sock.close()

    def line(self, sock, line):
        name, _, number = line.decode("utf-8", "replace").strip().rpartition(" ")
        if not name:
            self.count("line", "a line without a device name: %r" % line[:50])
            return
        if self.connections.get(name) is not sock:
            self.connections[name] = sock
            self.gateway.add_device(name, self.settings["deviceType"], self)
        self.counts.add("lines")
        self.emit(name, lambda: {"deviceName": name, "deviceType": self.settings["deviceType"], "attributes": {},
                                 "telemetry": [{"ts": now_ms(), "values": {self.settings["key"]: float(number)}}]},
                  "value", line)

    def write(self, name, text):
        sock, data = self.connections.get(name), ("%s\n" % text).encode("utf-8")
        if sock is None:
            raise ValueError("%s is not connected" % name)
        while data:  # on the io thread: a device that does not read delays only io, 5 s at most
            if not select.select([], [sock], [], 5.0)[1]:
                raise OSError("%s does not read" % name)
            data = data[sock.send(data):]
        return {"success": True}

    def rpc_target(self, name, method, params, request_id):
        return (self.io, lambda: self.write(name, params)) if method == "send" else "no method %s (only send)" % method

    def attribute_target(self, name, key, value):
        return (self.io, lambda: self.write(name, "%s=%s" % (key, value))) if key == "display" else None
