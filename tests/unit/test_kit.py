"""The connector kit (connectors/kit.py): the file validated once, emit(), dispatch onto
a worker, statistics made of counters, gauges and counted failures."""
import threading

from thingsboard_gateway.connectors.kit import ListeningConnector, PollingConnector
from thingsboard_gateway.connectors.registry import validate_connector_files
from thingsboard_gateway.config.loader import load_gateway_config
from tests.support.gateway import write_config
from tests.support.recorder import RecordingGateway
from tests.support.waiting import wait_until


def test_a_file_the_loader_validated_is_not_validated_again(tmp_path, monkeypatch):
    from thingsboard_gateway.connectors.serial.connector import SerialConnector
    serial = {"devices": [{"name": "M", "port": "/dev/ttyUSB9", "telemetry": [{"key": "t", "type": "float",
                                                                            "fromByte": 0, "toByte": -1}]}]}
    path = write_config(str(tmp_path), 1883, files={"serial.json": serial},
                        connectors=[{"name": "Line", "type": "serial", "configuration": "serial.json"}])
    spec = validate_connector_files(load_gateway_config(path)).connectors[0]
    calls = []
    original = SerialConnector.load_config
    monkeypatch.setattr(SerialConnector, "load_config",
                        staticmethod(lambda *a, **k: calls.append(a) or original(*a, **k)))
    connector = SerialConnector(RecordingGateway(), dict(spec.config, name="Line"), "serial")
    assert calls == [] and connector.settings["devices"][0]["baudrate"] == 9600  # completed by the loader
    assert "__validated__" not in connector.settings
    SerialConnector(RecordingGateway(), {"name": "Direct", "devices": serial["devices"]}, "serial")
    assert len(calls) == 1  # made directly: validated here


class Plain(PollingConnector):
    def start(self):
        self.worker = self.start_worker("ep", _Session())

    def gauges(self):
        return {"online": 1}

    def rpc_target(self, device, method, params, request_id):
        if device != "D":
            return "no device %s" % device
        return self.worker, lambda: {"echo": params, "thread": threading.current_thread().name}

    def attribute_target(self, device, key, value):
        return (self.worker, lambda: self.written.append((key, value))) if key == "mode" else None


class _Session(object):
    worker = None

    def connect(self):
        pass

    def disconnect(self):
        pass

    def connect_failed(self, reason):
        pass

    def run_job(self, key):
        pass


def test_dispatch_emit_and_statistics():
    gateway = RecordingGateway()
    connector = Plain(gateway, {"name": "P"}, "plain")
    connector.written = []
    connector.open()
    try:
        wait_until(connector.is_connected, what="the worker connected")
        connector.server_side_rpc_handler({"device": "D", "data": {"id": 1, "method": "m", "params": 5}})
        connector.server_side_rpc_handler({"device": "X", "data": {"id": 2, "method": "m"}})
        connector.on_attributes_update({"device": "D", "data": {"mode": "eco", "other": 1}})
        wait_until(lambda: len(gateway.replies) == 2 and connector.written, what="replies and the write")
        replies = dict((r[1], r[2]) for r in gateway.replies)
        assert replies[1] == {"echo": 5, "thread": "connector:P-ep"}  # ran on the worker, not here
        assert replies[2] == {"error": "no device X"}
        assert connector.written == [("mode", "eco")]

        def broken():
            raise RuntimeError("bad frame")
        assert connector.emit("D", broken, "frame", b"xx") == 0
        assert connector.emit("D", lambda: ([{"deviceName": "D", "telemetry": [{"ts": 1, "values": {"v": 1}}]}, None],
                                            [("v2", "not a number")]), "frame") == 1
        connector.counts.add("frames", 2)
        stats = connector.statistics()
        assert stats == {"frames": 2, "online": 1, "failures_converter:D": 1, "failures_frame:D": 1}
        assert gateway.sent == [{"deviceName": "D", "telemetry": [{"ts": 1, "values": {"v": 1}}]}]
    finally:
        connector.close()
    assert not connector.is_connected()


def test_a_listening_connector_has_its_io_worker_and_closes_it():
    connector = ListeningConnector(RecordingGateway(), {"name": "L"}, "listen")
    connector.open()
    try:
        done = []
        assert connector.on_io(lambda: threading.current_thread().name, done.append)
        wait_until(lambda: done, what="the io work")
        assert done == ["connector:L-io"]
    finally:
        connector.close()
    refused = []
    connector.io = None
    assert connector.on_io(lambda: 1, refused.append) is False and "closed" in refused[0]["error"]
