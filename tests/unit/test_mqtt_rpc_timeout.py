"""A two-way RPC the device never answers gets an error reply once its responseTimeout
passes on the connector's clock (driven here, no broker, no sleeping)."""
from thingsboard_gateway.connectors.mqtt.connector import MqttConnector
from tests.support.clock import Clock
from tests.support.recorder import RecordingGateway


class Connection(object):
    def __init__(self):
        self.published, self.subscribed, self.unsubscribed = [], [], []

    def publish(self, topic, payload, qos=1, on_ack=None, retain=False):
        self.published.append(topic)

    def subscribe(self, topic, qos=1):
        self.subscribed.append(topic)

    def unsubscribe(self, topic):
        self.unsubscribed.append(topic)



CONFIG = {"name": "MQTT", "broker": {"host": "127.0.0.1", "port": 1883},
          "mapping": [],
          "serverSideRpc": [{"type": "twoWay", "deviceNameFilter": ".*", "methodFilter": "getRelay",
                             "requestTopicExpression": "sensor/${deviceName}/request/${methodName}/${requestId}",
                             "responseTopicExpression": "sensor/${deviceName}/response/${methodName}/${requestId}",
                             "responseTimeout": 10000, "valueExpression": "${params}"}]}


def make():
    gateway = RecordingGateway()
    connector = MqttConnector(gateway, dict(CONFIG), "mqtt")
    connector.clock = Clock(50.0)
    connector._connection = Connection()
    return connector, gateway


def test_unanswered_two_way_rpc_times_out_on_the_connector_clock():
    connector, gateway = make()
    connector.server_side_rpc_handler({"device": "SN-1", "data": {"id": 7, "method": "getRelay", "params": {}}})
    assert connector._connection.published == ["sensor/SN-1/request/getRelay/7"]
    assert connector._rpc_waiting.wait(connector.clock(), 0.5) == 0.5  # capped: the timeout is 10 s away
    connector.clock.now += 9.9
    connector._expire_rpcs()
    assert gateway.replies == []
    connector.clock.now += 0.2
    connector._expire_rpcs()
    assert gateway.replies[0][:2] == ("SN-1", 7) and "timeout" in gateway.replies[0][2]["error"]
    assert connector._connection.unsubscribed == ["sensor/SN-1/response/getRelay/7"]


def test_an_answer_in_time_is_the_reply_and_nothing_expires_later():
    connector, gateway = make()
    connector.server_side_rpc_handler({"device": "SN-1", "data": {"id": 8, "method": "getRelay", "params": {}}})
    assert connector._rpc_response("sensor/SN-1/response/getRelay/8", b'{"relay": true}')
    connector.clock.now += 60
    connector._expire_rpcs()
    assert gateway.replies == [("SN-1", 8, {"relay": True})]
