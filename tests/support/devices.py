"""A device side for MQTT connector tests: publishes to the devices broker and records
what the gateway sends to devices."""
import json
import threading
import time

import paho.mqtt.client as mqtt


class DeviceClient(object):
    def __init__(self, port, subscriptions=("#",), client_id=None):
        self.messages = []  # (topic, payload bytes)
        self.cond = threading.Condition()
        self.responders = {}  # topic filter -> callable(topic, payload) -> (topic, payload) or None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "device-%d" % id(self))
        self.client.on_message = self._on_message
        ready = threading.Event()

        def on_connect(client, userdata, flags, reason_code, properties):
            client.subscribe([(t, 1) for t in subscriptions])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *args: ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("device client could not subscribe")

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append((msg.topic, msg.payload))
            self.cond.notify_all()
        for topic_filter, respond in list(self.responders.items()):
            if mqtt.topic_matches_sub(topic_filter, msg.topic):
                answer = respond(msg.topic, msg.payload)
                if answer is not None:
                    client.publish(answer[0], answer[1], qos=1)

    def publish(self, topic, payload, qos=1):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        return self.client.publish(topic, payload, qos=qos).wait_for_publish(10)

    def wait_topic(self, topic, timeout=15.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, payload in self.messages:
                    if t == topic:
                        return payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("device side: nothing on %s; got %s" % (topic, [t for t, _ in self.messages]))
                self.cond.wait(remaining)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class RelayPeers(object):
    """The real peers of an MQTT relay test: a devices broker, a platform broker, the
    platform double and a device client."""

    def __init__(self, folder, device_subscriptions):
        from tests.support.broker import Mosquitto
        from tests.support.platform import PlatformDouble
        self._cleanup = []
        try:
            self.platform_broker = self._keep(Mosquitto(folder, "platform").start(), "stop")
            self.devices_broker = self._keep(Mosquitto(folder, "devices").start(), "stop")
            self.platform = self._keep(PlatformDouble(self.platform_broker.port), "close")
            self.devices = self._keep(DeviceClient(self.devices_broker.port, subscriptions=device_subscriptions),
                                      "close")
        except BaseException:
            self.close()
            raise

    def _keep(self, thing, method):
        self._cleanup.append(getattr(thing, method))
        return thing

    def close(self):
        """Stop everything started, newest first (also after a failed start)."""
        while self._cleanup:
            self._cleanup.pop()()


def seq_connector_file(port, client_id):
    """An MQTT connector file for relay tests: {"serialNumber": name, "seq": n} on
    sensor/+/data -> telemetry seq of device `name`; QoS 1 and a persistent session, so
    the broker keeps what the gateway has not acknowledged."""
    return {"broker": {"host": "127.0.0.1", "port": port, "clientId": client_id, "version": 4,
                       "cleanSession": False, "security": {"type": "anonymous"}},
            "mapping": [{"topicFilter": "sensor/+/data", "subscriptionQos": 1,
                         "converter": {"type": "json",
                                       "deviceInfo": {"deviceNameExpressionSource": "message",
                                                      "deviceNameExpression": "${serialNumber}"},
                                       "timeseries": [{"type": "integer", "key": "seq", "value": "${seq}"}]}}]}


class PacedPublisher(object):
    """A device publishing {"serialNumber": device, "seq": n} (n from 1) on
    sensor/<device>/data with `client` (a paho client) at `rate` per second (0: as fast
    as it can), `limit` messages at most, on its own thread until stop()."""

    def __init__(self, client, rate, device="S1", limit=None):
        self.client, self.rate, self.device, self.limit = client, rate, device, limit
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher")
        self._thread.start()

    def _run(self):
        start = time.monotonic()
        topic = "sensor/%s/data" % self.device
        while not self._stop.is_set() and (self.limit is None or self.sent < self.limit):
            if self.rate:
                due = start + self.sent / float(self.rate)
                if due > time.monotonic():
                    self._stop.wait(due - time.monotonic())
                    continue
            self.sent += 1
            self.client.publish(topic, json.dumps({"serialNumber": self.device, "seq": self.sent}), qos=1)
            if not self.rate and self.sent % 500 == 0:
                time.sleep(0.01)  # let the client's network thread write

    def stop(self):
        self._stop.set()
        self._thread.join(10)
