"""One serial port and the devices on it, on the port's DeviceWorker thread: opening and
reopening the port, reading and framing, polling (requestString), RPC exchanges."""
import logging
import os
import select
from typing import Any, Dict, List, Optional

from thingsboard_gateway.connectors.serial.uplink import decode_value
from thingsboard_gateway.connectors.worker import DeviceSession, SessionLost
from thingsboard_gateway.conversion.casting import CastError
from thingsboard_gateway.conversion.framing import Framer

log = logging.getLogger(__name__)

READ = "read"  # the schedule key of the port's read job (device names are the poll jobs)


def _framer(device, delimiter=None):
    # type: (Dict[str, Any], Optional[str]) -> Framer
    text = device["delimiter"] if delimiter is None else delimiter
    return Framer(text.encode("utf-8"), None if delimiter is not None else device.get("frameLength"),
                  device["maxFrameLength"])


class PortSession(DeviceSession):
    """One serial port and the devices on it; every method runs on the port's thread."""

    def __init__(self, connector, port, devices):
        # type: (Any, str, List[Dict[str, Any]]) -> None
        self.connector = connector
        self.port = port
        self.devices = devices
        self.settings = devices[0]  # line settings come from the first device on the port
        self.listener = next((d for d in devices if d.get("requestString") is None), None)
        self.framer = _framer(self.listener or self.settings)
        self.serial = None  # type: Any
        self._fd = -1
        self.last_byte_at = 0.0
        self.opened = 0

    def connect(self):
        import serial
        s = self.settings
        self.serial = serial.Serial(port=self.port, baudrate=s["baudrate"], bytesize=s["bytesize"],
                                    parity=s["parity"], stopbits=s["stopbits"], timeout=s["timeout"],
                                    write_timeout=s["writeTimeout"], rtscts=s["rtscts"], xonxoff=s["xonxoff"],
                                    dsrdtr=s["dsrdtr"])
        self._fd = self.serial.fileno()
        self.opened += 1
        if self.opened > 1:
            log.warning("%s: serial port %s is back", self.connector.name, self.port)
        self.framer.take_rest()
        for device in self.devices:
            self.worker.set_online(device["name"], device["type"], True)
            if device is not self.listener and device["name"] not in self.worker.schedule:
                self.worker.schedule.add(device["name"], device["pollPeriod"] / 1000.0)
        if READ not in self.worker.schedule:
            self.worker.schedule.add(READ, 0.0)

    def disconnect(self):
        port, self.serial = self.serial, None
        if port is not None:
            try:
                port.close()
            except Exception:
                log.debug("closing %s failed", self.port, exc_info=True)
        if self.framer.take_rest():
            self.connector.note("partial", self.port, "a partial frame was dropped when the port closed")
        for device in self.devices:
            self.worker.set_online(device["name"], device["type"], False)

    # -- I/O ----------------------------------------------------------------------------------
    def _read(self):
        # type: () -> bytes
        """What the port has now (waits up to the port's read timeout for the first byte).

        One select and one os.read on the port's descriptor: pyserial's read(1) +
        in_waiting + read(n) costs three selects and an ioctl for the same bytes (the
        connector's CPU per line was 1.7x a plain pyserial loop's with it)."""
        port = self.serial
        if port is None:
            raise SessionLost("port %s is not open" % self.port)
        try:
            ready, _, _ = select.select([self._fd], [], [], self.settings["timeout"])
            if not ready:
                return b""
            data = os.read(self._fd, 65536)
        except (OSError, ValueError) as e:  # the adapter is gone (EIO), or the port was closed
            raise SessionLost("%s: %s" % (type(e).__name__, e))
        if not data:  # readable but empty: the device went away (pyserial says the same)
            raise SessionLost("device disconnected")
        return data

    def write(self, data):
        # type: (bytes) -> None
        if self.serial is None:
            raise SessionLost("port %s is not open" % self.port)
        try:
            self.serial.write(data)
            self.serial.flush()
        except Exception as e:
            raise SessionLost("writing to %s: %s: %s" % (self.port, type(e).__name__, e))

    def read_frame(self, framer, timeout):
        # type: (Framer, float) -> Optional[bytes]
        """The next frame cut by `framer`, or None after `timeout` seconds. What the line
        sent after it goes back to the port's own framer."""
        clock = self.worker.clock
        deadline = clock() + timeout
        while clock() < deadline:
            frames = framer.feed(self._read())
            if frames:
                rest = b"".join(f + framer.delimiter for f in frames[1:]) + framer.take_rest()
                if rest:
                    self.deliver(self.framer.feed(rest))
                return frames[0]
        return None

    # -- jobs ----------------------------------------------------------------------------------
    def run_job(self, key):
        if key == READ:
            self.read_once()
        else:
            self.poll(next(d for d in self.devices if d["name"] == key))

    def read_once(self):
        data = self._read()
        now = self.worker.clock()
        if data:
            self.last_byte_at = now
            overlong = self.framer.overlong
            self.deliver(self.framer.feed(data))
            if self.framer.overlong != overlong:
                self.framer.overlong = 0
                self.connector.note("overlong", self.port, "a frame longer than %d bytes was skipped"
                                     % self.framer.max_length)
        elif self.framer.pending() and now - self.last_byte_at > self.settings["frameTimeoutMs"] / 1000.0:
            self.connector.note("partial", self.port, "a partial frame was dropped (no end within %d ms)"
                                 % self.settings["frameTimeoutMs"], self.framer.take_rest())

    def deliver(self, frames):
        # type: (List[bytes]) -> None
        if self.listener is None:
            if frames:
                self.connector.note("unexpected", self.port, "%d frame(s) nobody asked for" % len(frames))
            return
        for frame in frames:
            if frame.strip():  # a blank line (or the "\n" after an answer cut at "\r") carries nothing
                self.connector.convert(self.listener, frame)

    def poll(self, device):
        # type: (Dict[str, Any]) -> None
        self.write(device["requestString"].encode("utf-8"))
        frame = self.read_frame(_framer(device), device["frameTimeoutMs"] / 1000.0)
        if frame is None:
            self.connector.note("timeout", device["name"], "no answer within %d ms" % device["frameTimeoutMs"])
            return
        self.connector.convert(device, frame)

    def call(self, device, entry, method, params):
        # type: (Dict[str, Any], Dict[str, Any], str, Any) -> Any
        """One RPC on this port: write, then (withResponse) read the answer frame."""
        self.write(self.connector.downlink(device, {"method": method, "params": params, "entry": entry}))
        if not entry["withResponse"]:
            return {"success": True}
        framer = _framer(device, entry.get("responseUntilDelimiter") or device["delimiter"])
        frame = self.read_frame(framer, entry["responseTimeoutSec"])
        if frame is None:
            return {"error": "no response from %s within %s s" % (device["name"], entry["responseTimeoutSec"])}
        try:
            return {"result": decode_value(frame, entry["responseType"])}
        except CastError as e:
            return {"error": "response %r: %s" % (frame[:100], e)}
