"""A stopped MQTT connection releases every file descriptor at once, not when the garbage
collector gets to it: a connector restarted 1,000 times must not use up the process's
file descriptors (bench/soak_bench.py is the long version)."""
import gc
import os

from thingsboard_gateway.mqtt.connection import MqttConnection, make_client


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_stopped_connections_release_their_sockets_without_a_gc(broker):
    gc.collect()
    gc.disable()  # what a quiet gateway does for long stretches: no full collection
    try:
        before = open_fds()
        for i in range(20):
            connection = MqttConnection("test", make_client("release-%d" % i), "127.0.0.1", broker.port)
            connection.start()
            assert connection.wait_connected(10)
            connection.stop(5.0)
            del connection
        assert open_fds() - before <= 2
    finally:
        gc.enable()
