"""SocketConnector: a TCP or UDP listener (upstream socket.json). A thread for the
listener and one per TCP connection, at most maxConnections of them; a connection silent
for idleTimeoutSec is closed; a message is at most maxMessageSize bytes. Attribute updates
and RPCs go back to the device's connection (or datagram address).

Nothing here blocks the thread that asks for a write (the platform connection's): a write
to a connection goes out at once as far as the socket takes it, the rest waits in that
connection's outbox (at most OUTBOX bytes) for its own thread; a device that stops reading
fills only its own outbox. A write to a concrete address with no connection open is dialed
on the connector's io thread.
"""
import logging
import select
import socket
import threading
from time import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.kit import ListeningConnector
from thingsboard_gateway.connectors.socket import config as socket_config
from thingsboard_gateway.connectors.socket.peer import Done, Peer
from thingsboard_gateway.connectors.socket.uplink import AttributeRequest, DeviceConverter, address_pattern
from thingsboard_gateway.connectors.socket.downlink import device_bytes
from thingsboard_gateway.conversion.framing import Framer

log = logging.getLogger(__name__)

POLL = 0.5  # seconds a blocked accept/recv waits before looking at the stop event
DRAIN = 256  # datagrams taken per wake-up at most (then the stop event is looked at)
DIAL_TIMEOUT = 5.0  # seconds to connect to a device's concrete address

class SocketConnector(ListeningConnector):
    """Upstream-compatible socket connector (see README.md beside this file)."""

    default_file = "socket.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        return socket_config.load(config, file, warnings)

    @staticmethod
    def describe_config(config):
        s = config["socket"]
        return "%s %s:%d, %d device(s): %s" % (s["type"], s["address"], s["port"], len(config["devices"]),
                                                ", ".join(d["deviceName"] for d in config["devices"]))

    def __init__(self, gateway, config, connector_type):
        super(SocketConnector, self).__init__(gateway, config, connector_type)
        self.settings_socket = socket_settings = self.settings["socket"]
        devices = self.settings["devices"]
        self.patterns = [(address_pattern(d.get("addressFilter") or d["address"]), d) for d in devices]
        self.by_name = {d["deviceName"]: d for d in devices}
        self.requests = {d["deviceName"]: [AttributeRequest(r, self.file, "attributeRequests")
                                           for r in d["attributeRequests"]] for d in devices}
        self.converters = {d["deviceName"]: DeviceConverter(d) for d in devices}
        for kind in ("connections", "connections_refused", "connections_idle_closed"):
            self.counts.add(kind, 0)
        self._count_message = self.counts.ticker("messages")
        self.udp = socket_settings["type"] == "UDP"
        self.uses_io = not self.udp  # datagrams go out at once; only TCP dials on the io thread
        self._lock = threading.Lock()
        self._peers = {}  # type: Dict[Tuple[str, int], Peer]
        self._last_peer = {}  # type: Dict[str, Peer]  device name -> where it last spoke from
        self._connection_threads = []  # type: List[threading.Thread]
        self._listener = None  # type: Optional[socket.socket]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self):
        s = self.settings_socket
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((s["address"], s["port"]))
            if not self.udp:
                listener.listen(min(128, s["maxConnections"]))
        except OSError:
            listener.close()
            raise
        listener.settimeout(POLL)
        self._listener = listener
        self.start_thread(self._serve_udp if self.udp else self._serve_tcp, "%s-%d" % (s["type"].lower(), s["port"]))

    def stopping(self):
        with self._lock:
            peers = list(self._peers.values())
        for peer in peers:
            self._shutdown(peer)

    def close(self):
        super(SocketConnector, self).close()
        for thread in self._connection_threads:
            thread.join(self.close_timeout)
        self._connection_threads = []
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def is_connected(self):
        return self._listener is not None and self.is_alive()

    def gauges(self):
        with self._lock:
            return {"connections_open": len(self._peers)}

    # -- TCP ---------------------------------------------------------------------------------
    def _serve_tcp(self):
        while not self.stop_event.is_set():
            try:
                sock, address = self._listener.accept()
            except socket.timeout:
                continue
            except OSError as e:
                if self.stop_event.is_set():
                    return
                self.count("accept", "accept failed: %s" % e)
                self.stop_event.wait(POLL)
                continue
            with self._lock:
                full = len(self._peers) >= self.settings_socket["maxConnections"]
                peer = None if full else Peer(sock, address[:2], self._device_for(address))
                if peer is not None:
                    self._peers[peer.address] = peer
            if peer is None:
                self.counts.add("connections_refused")
                self.count("connections_full", "refused %s:%d: %d connections open already"
                           % (address[0], address[1], self.settings_socket["maxConnections"]))
                sock.close()
                continue
            self.counts.add("connections")
            self._connection_threads = [t for t in self._connection_threads if t.is_alive()]
            thread = threading.Thread(target=self._connection, args=(peer,),
                                      name="connector:%s-tcp-%s:%d" % (self.name, address[0], address[1]))
            self._connection_threads.append(thread)
            thread.start()

    def _connection(self, peer):
        # type: (Peer) -> None
        """A connection's thread: whatever goes wrong ends this connection only."""
        reason = "the connection closed before the data was sent"
        try:
            self._serve_connection(peer)
        except Exception as e:  # a bug must not print a traceback nor end more than this one
            reason = "%s: %s" % (type(e).__name__, e)
            self.count("connection", "%s:%d: %s" % (peer.address[0], peer.address[1], reason))
            log.debug("%s: connection %s failed", self.name, peer.address, exc_info=True)
        finally:
            with self._lock:
                self._peers.pop(peer.address, None)
            peer.close(reason)
            self._shutdown(peer)

    def _serve_connection(self, peer):
        # type: (Peer) -> None
        settings = self.settings_socket
        sock = peer.sock
        framer = Framer(settings["delimiter"].encode("utf-8"), None, settings["maxMessageSize"]) \
            if settings.get("delimiter") else None
        last = self.clock()
        try:
            sock.setblocking(False)
        except OSError:
            return  # close() cut this connection before its thread began
        while not self.stop_event.is_set():
            try:
                readable, writable, _ = select.select([sock], [sock] if peer.outbox else [], [], POLL)
            except (OSError, ValueError):
                return  # shut down by close()
            if writable:
                peer.flush()
            if not readable:
                if self.clock() - last > settings["idleTimeoutSec"]:
                    self.counts.add("connections_idle_closed")
                    log.debug("%s: closing %s:%d, silent for %s s", self.name, peer.address[0],
                              peer.address[1], settings["idleTimeoutSec"])
                    return
                continue
            try:
                data = sock.recv(settings["bufferSize"])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return  # reset by the peer, or shut down by close()
            if not data:
                return  # the peer closed (or half-closed) its side
            last = self.clock()
            if framer is None:
                self.handle(peer, data)
                continue
            overlong = framer.overlong
            for message in framer.feed(data):
                self.handle(peer, message)
            if framer.overlong != overlong:
                self.count("overlong", "a message from %s:%d longer than %d bytes was skipped"
                           % (peer.address[0], peer.address[1], settings["maxMessageSize"]))

    @staticmethod
    def _shutdown(peer):
        # type: (Peer) -> None
        try:
            peer.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        peer.sock.close()

    # -- UDP ---------------------------------------------------------------------------------
    def _serve_udp(self):
        """Wait until datagrams are queued, then take all of them (up to DRAIN) without
        waiting: one select per burst instead of a poll per datagram."""
        listener, size = self._listener, self.settings_socket["bufferSize"]  # longer datagrams are cut
        listener.setblocking(False)
        peers = {}  # type: Dict[Tuple[str, int], Peer]
        while not self.stop_event.is_set():
            try:
                if not select.select([listener], [], [], POLL)[0]:
                    continue
            except (OSError, ValueError):
                return  # closed by close()
            for _ in range(DRAIN):
                try:
                    data, address = listener.recvfrom(size)
                except BlockingIOError:
                    break
                except OSError as e:
                    if self.stop_event.is_set():
                        return
                    self.count("receive", "receiving failed: %s" % e)
                    break
                peer = peers.get(address)
                if peer is None:
                    if len(peers) >= 4096:  # a bounded memory of senders
                        peers.clear()
                    peer = peers[address] = Peer(None, address[:2], self._device_for(address))
                self.handle(peer, data)

    # -- messages ----------------------------------------------------------------------------
    def _device_for(self, address):
        # type: (Tuple[str, int]) -> Optional[Dict[str, Any]]
        text = "%s:%d" % (address[0], address[1])
        return next((d for pattern, d in self.patterns if pattern.match(text)), None)

    def handle(self, peer, data):
        # type: (Peer, bytes) -> None
        """One message from a peer: an attribute request, or data to convert and store."""
        self._count_message()
        device = peer.device
        if device is None:
            self.count("unknown_peer", "no device matches %s:%d; message dropped" % peer.address, data)
            return
        name = device["deviceName"]
        self._last_peer[name] = peer
        for request in self.requests[name]:
            attribute = request.attribute(data, device["encoding"])
            if attribute is not None:
                self._request_attribute(peer, device, attribute, request.shared)
                return
        converted, failures = self.converters[name].convert(data, int(time() * 1000))
        self.deliver(name, converted, failures, "message", data)

    def _request_attribute(self, peer, device, name, shared):
        # type: (Peer, Dict[str, Any], str, bool) -> None
        def answer(response):
            value = response.get("value") if "value" in response else (response.get("values") or {}).get(name)
            try:
                data = device_bytes(value, device["encoding"])
            except UnicodeError as e:
                self._write_failed(device["deviceName"], "attribute " + name, str(e))
                return
            self._to_peer(peer, data, lambda error: self._write_failed(device["deviceName"], "attribute " + name,
                                                                       error))
        self.gateway.add_device(device["deviceName"], device["deviceType"], self)
        self.gateway.request_attributes(device["deviceName"], [name], answer, shared)

    def _write_failed(self, device, what, error):
        # type: (str, str, Optional[str]) -> None
        if error is not None:
            self.count("write:" + device, "%s for %s not sent: %s" % (what, device, error))

    def _to_peer(self, peer, data, done):
        # type: (Peer, bytes, Done) -> None
        if peer.sock is not None:
            refused = peer.put(data, done)
            if refused is not None:
                done(refused)
            return
        try:
            self._listener.sendto(data, peer.address)  # non-blocking: a full buffer is an error
        except (OSError, AttributeError) as e:  # AttributeError: closed meanwhile
            done("%s: %s" % (type(e).__name__, e))
            return
        done(None)

    def send_to_device(self, name, data, done):
        # type: (str, bytes, Done) -> None
        """To the connection the device last spoke on, else to its configured concrete
        address; never blocks. done(None) once sent, done(reason) when it was not."""
        peer = self._last_peer.get(name)
        if peer is not None and (peer.sock is None or peer.address in self._peers):
            self._to_peer(peer, data, done)
            return
        address = self.by_name[name].get("address") or ""
        host, _, port = address.rpartition(":")
        if "*" in address or not port.isdigit():
            done("%s has no open connection and no concrete address to send to" % name)
            return
        if self.udp:
            self._to_peer(Peer(None, (host, int(port)), self.by_name[name]), data, done)
            return
        self.on_io(lambda: self._dial(host, int(port), data),
                   lambda result: done(result.get("error") if isinstance(result, dict) else None))

    @staticmethod
    def _dial(host, port, data):
        # type: (str, int, bytes) -> None
        """On the io thread: one connection for one write."""
        with socket.create_connection((host, port), timeout=DIAL_TIMEOUT) as sock:
            sock.sendall(data)

    # -- platform requests (the platform connection's thread: nothing here blocks) -----------
    def on_attributes_update(self, content):
        device = self.by_name.get(content.get("device"))
        if device is None:
            return
        name = device["deviceName"]
        for key, value in (content.get("data") or {}).items():
            for entry in device["attributeUpdates"]:
                if entry["attributeOnThingsBoard"] == key:
                    try:
                        data = device_bytes(value, entry["encoding"])
                    except UnicodeError as e:
                        self._write_failed(name, "attribute " + key, str(e))
                        continue
                    self.send_to_device(name, data, lambda error, key=key: self._write_failed(name, "attribute " + key,
                                                                                              error))

    def server_side_rpc_handler(self, content):
        name, method, params, reply = self.rpc_request(content)
        device = self.by_name.get(name)
        entry = None if device is None else next((e for e in device["serverSideRpc"] if e["methodRPC"] == method), None)
        if entry is None:
            reply({"error": "no serverSideRpc entry for method %s on %s" % (method, name)})
            return
        try:
            data = device_bytes(params, entry["encoding"])
        except UnicodeError as e:
            reply({"error": str(e)})
            return

        def done(error):
            if error is not None:
                reply({"error": error})
            elif entry["withResponse"]:
                reply({"success": True})
        self.send_to_device(name, data, done)
