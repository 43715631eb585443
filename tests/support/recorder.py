"""The gateway as a connector sees it, recording what it is given (for connector tests
that run a connector in the test's own process)."""
import concurrent.futures

from thingsboard_gateway.connectors.connector import GatewayApi


class RecordingGateway(GatewayApi):
    """store_ok: what on_stored reports (False: storage full). attributes: {key: value}
    answered to attribute requests on the calling thread."""

    def __init__(self, store_ok=True, attributes=None):
        self.sent = []      # converted data, in order
        self.replies = []   # (device, request id, content)
        self.devices = []   # devices currently announced, in order
        self.events = []    # ("add" | "del", device), every announcement in order
        self.store_ok = store_ok
        self.attributes = attributes or {}

    def send_to_storage(self, name, connector_id, data, on_stored=None, prompt=False, delivery=True):
        future = concurrent.futures.Future()
        if self.store_ok:
            self.sent.append(data)
            future.set_result(None)
        else:
            future.set_exception(RuntimeError("dropped: the storage queue stayed full"))
        if on_stored is not None:
            on_stored(self.store_ok)
        return future

    def send_rpc_reply(self, device, request_id, content):
        self.replies.append((device, request_id, content))

    def add_device(self, name, device_type, connector):
        self.events.append(("add", name))
        if name not in self.devices:
            self.devices.append(name)

    def del_device(self, name):
        self.events.append(("del", name))
        if name in self.devices:
            self.devices.remove(name)

    def request_attributes(self, device, keys, callback, shared=True):
        callback({"id": 1, "device": device, "value": self.attributes.get(keys[0])})
