"""The router holds attribute requests made while the platform connection is not
subscribed (connectors start before it connects): the answer would find no subscription.
Pure: the router is given a recording publish function."""
import json

from thingsboard_gateway.gateway.routing import Router
from thingsboard_gateway.platform import topics


def router_with_log():
    published = []
    router = Router(lambda topic, payload: published.append((topic, json.loads(payload))), lambda device: None, {})
    return router, published


def test_a_request_before_the_connection_is_ready_is_sent_once_it_is():
    router, published = router_with_log()
    answers = []
    request_id = router.request_attributes("Probe Device", ["targetTemp"], answers.append)
    assert published == []  # not subscribed yet: held
    router.connection_ready()
    assert published == [(topics.ATTRIBUTES_REQUEST, {"id": request_id, "device": "Probe Device", "client": False,
                                                       "key": "targetTemp"})]
    router.handle(topics.ATTRIBUTES_RESPONSE, json.dumps({"id": request_id, "value": 21.5}).encode())
    assert answers == [{"id": request_id, "value": 21.5}]


def test_requests_go_at_once_while_ready_and_are_held_again_after_the_connection_is_lost():
    router, published = router_with_log()
    router.connection_ready()
    router.request_attributes("A", ["x"], lambda answer: None)
    assert len(published) == 1
    router.connection_lost()
    router.request_attributes("A", ["y", "z"], lambda answer: None)
    assert len(published) == 1
    router.connection_ready()
    assert published[-1][1]["keys"] == ["y", "z"] and len(published) == 2
    router.connection_ready()  # a second ready sends nothing twice
    assert len(published) == 2


class _Connector(object):
    def __init__(self, name):
        self.name, self.got = name, []

    def get_name(self):
        return self.name

    def server_side_rpc_handler(self, content):
        self.got.append(content)

    def on_attributes_update(self, content):
        self.got.append(content)


def test_connector_rpcs_of_the_page_go_to_the_connector_by_id_and_answer_the_gateway_device():
    published = []
    a, b = _Connector("A"), _Connector("B")
    by_id = {"id-a": [a], "id-b": [b], None: [a, b]}
    router = Router(lambda topic, payload: published.append((topic, json.loads(payload))), lambda device: None, {},
                    connectors_of=lambda kind, cid: by_id.get(cid, []) if kind == "modbus" else [])
    router.handle(topics.ME_RPC_REQUEST + "41", json.dumps(
        {"method": "modbus_get", "params": {"deviceName": "M1", "address": 3, "connectorId": "id-b"}}).encode())
    assert a.got == [] and b.got == [{"device": "M1", "data": {"id": 41, "method": "get", "params": {
        "deviceName": "M1", "address": 3}}}]
    router.send_rpc_reply("M1", 41, {"value": 7})  # the connector answers as for a device RPC ...
    assert published == [(topics.ME_RPC_RESPONSE + "41", {"value": 7})]  # ... the gateway device gets it
    router.handle(topics.ME_RPC_REQUEST + "42", b'{"method": "modbus_get", "params": "{}"}')
    assert len(a.got) == 1 and len(b.got) == 2 and a.got[0]["device"] is None  # every modbus connector
    router.handle(topics.ME_RPC_REQUEST + "43", b'{"method": "modbus_get", "params": {"connectorId": "gone"}}')
    router.handle(topics.ME_RPC_REQUEST + "44", b'{"method": "bacnet_read", "params": {}}')
    assert [p["code"] for t, p in published[1:]] == [404, 404]


def test_the_platform_speaks_of_renamed_devices_by_their_new_names():
    from thingsboard_gateway.platform.names import DeviceNames
    published = []
    names = DeviceNames({"meter-7": "Kitchen"})
    connector = _Connector("Modbus")
    router = Router(lambda topic, payload: published.append((topic, json.loads(payload))),
                    lambda device: connector if device == "meter-7" else None, {}, names=names)
    router.handle(topics.RPC, b'{"device": "Kitchen", "data": {"id": 5, "method": "read", "params": {}}}')
    router.handle(topics.ATTRIBUTES, b'{"device": "Kitchen", "data": {"setpoint": 20}}')
    assert [c["device"] for c in connector.got] == ["meter-7", "meter-7"]
    router.send_rpc_reply("meter-7", 5, {"ok": True})
    router.connection_ready()
    router.request_attributes("meter-7", ["a"], lambda answer: None)
    assert [p["device"] for t, p in published] == ["Kitchen", "Kitchen"]
