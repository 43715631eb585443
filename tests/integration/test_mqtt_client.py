"""paho's Client reading through a buffer and sending PUBACKs as one write
(thingsboard_gateway/mqtt/client.py), against a real Mosquitto: every packet of a burst
arrives whole and in order, whatever its size, and the broker takes the batched PUBACKs
(it redelivers exactly the messages that were not acknowledged)."""
import json
import threading
import time

import paho.mqtt.client as mqtt

from tests.support.waiting import wait_until
from thingsboard_gateway.mqtt.client import BufferedSocket
from thingsboard_gateway.mqtt.connection import make_client


def receiver(port, client_id, clean, on_message=None, callbacks=()):
    client = make_client(client_id, clean_session=clean, manual_ack=True)
    got = []
    subscribed = threading.Event()
    client.on_message = on_message or (lambda c, u, m: got.append((m.mid, m.payload)))
    for topic, callback in callbacks:
        client.message_callback_add(topic, callback)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("burst/#", 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert subscribed.wait(10), "no SUBACK"
    return client, got


def sender(port):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="burst-sender")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def payloads():
    # sizes whose remaining length takes 1, 2 and 3 bytes, and one larger than the read buffer
    sizes = [10, 120, 127, 128, 300, 16383, 16384, 70000, 5] + [150] * 900
    return [json.dumps({"seq": i, "fill": "x" * size}).encode() for i, size in enumerate(sizes)]


def test_a_burst_arrives_whole_and_in_order(broker):
    client, got = receiver(broker.port, "burst-reader", True)
    out = sender(broker.port)
    try:
        assert isinstance(client.socket(), BufferedSocket)
        sent = payloads()
        for payload in sent:
            out.publish("burst/a", payload, qos=1)
        wait_until(lambda: len(got) >= len(sent), 20, "the burst")
        assert [payload for _, payload in got] == sent
        client.ack_many([(mid, 1) for mid, _ in got])
    finally:
        out.loop_stop()
        client.loop_stop()


def test_the_broker_redelivers_only_what_was_not_acknowledged(broker):
    client, got = receiver(broker.port, "acking-reader", False)
    out = sender(broker.port)
    try:
        for seq in range(300):
            out.publish("burst/b", json.dumps({"seq": seq}), qos=1)
        wait_until(lambda: len(got) >= 300, 20, "300 messages")
        client.ack_many([(mid, 1) for mid, _ in got[:200]])  # one write of 200 PUBACKs
        time.sleep(0.5)
        client.disconnect()
        client.loop_stop()
        again, redelivered = receiver(broker.port, "acking-reader", False)
        try:
            wait_until(lambda: len(redelivered) >= 100, 20, "the 100 unacknowledged messages again")
            time.sleep(0.5)
            assert [json.loads(payload)["seq"] for _, payload in redelivered] == list(range(200, 300))
        finally:
            again.disconnect()
            again.loop_stop()
    finally:
        out.loop_stop()
        client.loop_stop()


def test_flags_of_qos_0_and_retained_messages_and_topic_callbacks(broker):
    out = sender(broker.port)
    out.publish("burst/retained", b"kept", qos=1, retain=True).wait_for_publish(5)
    flags, on_topic = [], []
    client, _ = receiver(broker.port, "flags-reader", True,
                         on_message=lambda c, u, m: flags.append((m.topic, m.payload, m.qos, m.retain)),
                         callbacks=[("burst/cb", lambda c, u, m: on_topic.append(m.payload))])
    try:
        wait_until(lambda: flags, 10, "the retained message")
        out.publish("burst/q0", b"zero", qos=0)
        out.publish("burst/cb", b"filtered", qos=1)
        wait_until(lambda: len(flags) >= 2 and on_topic, 10, "a QoS 0 message and one for the topic callback")
        assert flags == [("burst/retained", b"kept", 1, True), ("burst/q0", b"zero", 0, False)]
        assert on_topic == [b"filtered"]  # not on_message: paho dispatches once topic callbacks exist
    finally:
        out.publish("burst/retained", b"", qos=1, retain=True).wait_for_publish(5)
        out.loop_stop()
        client.loop_stop()
