"""The gateway as a connector sees it, recording what it is given (for connector tests
that run a connector in the test's own process)."""


class RecordingGateway(object):
    def __init__(self):
        self.sent = []      # converted data, in order
        self.replies = []   # (device, request id, content)
        self.devices = []   # devices currently announced, in order

    def send_to_storage(self, name, connector_id, data, on_stored=None):
        self.sent.append(data)

    def send_rpc_reply(self, device, request_id, content):
        self.replies.append((device, request_id, content))

    def add_device(self, name, device_type, connector):
        if name not in self.devices:
            self.devices.append(name)

    def del_device(self, name):
        if name in self.devices:
            self.devices.remove(name)
