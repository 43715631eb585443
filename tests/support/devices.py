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
