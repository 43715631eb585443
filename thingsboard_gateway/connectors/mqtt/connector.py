"""MqttConnector: subscribes to a device broker, converts messages, hands them to the gateway.

Threads: paho's network thread only queues incoming messages (a bounded queue: when
it is full, paho's thread waits, so the broker session holds the rest); the
connector's own thread `connector:<name>` converts them and serves requestsMapping.
With QoS 1 subscriptions a device message is acknowledged only once the gateway holds
its data durably (storage commit), so with `cleanSession: false` a SIGKILL of the
gateway loses nothing: the broker redelivers what was not acknowledged.
"""
import json
import logging
import zlib
from typing import Any, Dict, List, Optional, Tuple

import paho.mqtt.client as mqtt

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.kit import ListeningConnector, now_ms, records
from thingsboard_gateway.connectors.mqtt import config as mqtt_config
from thingsboard_gateway.connectors.mqtt.acks import AckSequencer, Acker
from thingsboard_gateway.connectors.mqtt.requests import Requests, payload_of, render
from thingsboard_gateway.connectors.mqtt.uplink import BytesUplinkConverter
from thingsboard_gateway.conversion import payload_json
from thingsboard_gateway.conversion.mapped import JsonUplinkConverter
from thingsboard_gateway.conversion.report import with_entry_strategy
from thingsboard_gateway.connectors.registry import load_converter
from thingsboard_gateway.mqtt.connection import MqttConnection, make_client, tls_context
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.runtime.batchqueue import BatchQueue
from thingsboard_gateway.runtime.pending import Pending
from thingsboard_gateway.runtime.memo import remembered

log = logging.getLogger(__name__)

# The connector thread takes what paho queued in batches: after the first message it
# waits LINGER s for more, so a steady trickle costs one wake-up per batch, not one per
# message (see runtime/batchqueue.py). BATCH bounds the work between RPC-expiry checks.
LINGER = 0.005
BATCH = 500
# Topics seen -> their mapping (or None), their requests: matching every filter per message costs more
# than converting it (paho's topic_matches_sub builds a matcher at every call). Cleared when it
# grows past this (topics with ids can be unbounded).
TOPIC_CACHE = 10000


def match_filter(topic_filter):
    # type: (str) -> str
    """The filter incoming topics are matched against (`$share/<group>/` removed)."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


class Mapping(object):
    """One `mapping` entry: a topic filter and its converter."""

    def __init__(self, entry, index, file):
        self.topic_filter = entry["topicFilter"]
        self.match = match_filter(self.topic_filter)
        self.qos = entry["subscriptionQos"]
        converter = with_entry_strategy(entry, entry["converter"])
        path = "mapping[%d].converter" % index
        self.kind = converter.get("type", "json")
        if self.kind == "json":
            self.converter = JsonUplinkConverter(converter, file, path)  # type: Any
        elif self.kind == "bytes":
            self.converter = BytesUplinkConverter(converter, file, path)
        else:
            self.converter = _custom_converter(converter, file, path)


def _custom_converter(converter, file, path):
    name = converter.get("extension")
    if not name:
        raise ConfigError(file, path + ".extension", "a custom converter needs the class name")
    config = dict(converter)
    config.setdefault("extensionConfig", {})
    return load_converter(name, "mqtt", file, path + ".extension", config)


class MqttConnector(ListeningConnector):
    """Upstream-compatible MQTT connector (see README.md beside this file)."""

    default_file = "mqtt.json"
    uses_io = False  # publishing to the devices' broker only queues: it never blocks

    @staticmethod
    def load_config(config, file, warnings=None):
        """Validate and compile (to surface every error at start-up); returns the config."""
        config = mqtt_config.load(config, file, warnings)
        for i, entry in enumerate(config["mapping"]):
            Mapping(entry, i, file)
        Requests(config["requestsMapping"], file)
        return config

    @staticmethod
    def describe_config(config):
        broker = config["broker"]
        return "broker %s:%d, %d mapping(s): %s" % (broker["host"], broker["port"], len(config["mapping"]),
                                                    ", ".join(m["topicFilter"] for m in config["mapping"]))

    def __init__(self, gateway, config, connector_type):
        super(MqttConnector, self).__init__(gateway, config, connector_type)
        self._broker = self.settings["broker"]
        self._mappings = [Mapping(entry, i, self.file) for i, entry in enumerate(self.settings["mapping"])]
        self._requests = Requests(self.settings["requestsMapping"], self.file)
        self._requests_of = {}  # type: Dict[str, List[Any]]  topic -> its requestsMapping entries
        self._queue = BatchQueue(self._broker["queueSize"])
        self._mapping_of = {}  # type: Dict[str, Optional[Mapping]]
        self._count_received = self.counts.ticker("messages_received")
        self._count_converted = self.counts.ticker("messages_converted")
        self._rpc_waiting = Pending()  # response topic -> (device, request id)
        self._connection = None  # type: Optional[MqttConnection]
        self._acks = AckSequencer(lambda acks: self._connection.ack(acks))

    # -- life cycle -----------------------------------------------------------------------
    def _client(self):
        broker = self._broker
        version = broker["version"]
        client_id = broker.get("clientId") or "tb-gw-%08x" % (zlib.crc32(self.name.encode()) & 0xFFFFFFFF)
        security = broker["security"]
        username = password = tls = None  # type: Any
        if security["type"] in ("basic", "certificates") and security.get("username"):
            username, password = security["username"], security.get("password")
        if security["type"] == "certificates":
            tls = tls_context(security.get("caCert"), security.get("cert"), security.get("privateKey"),
                              not security["insecure"])
        return make_client(client_id, version, broker["cleanSession"], username, password, tls, manual_ack=True)

    def _connect_args(self):
        broker = self._broker
        if broker["version"] != 5:
            return {}
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = broker["sessionExpiryInterval"]
        clean_start = broker["cleanStart"] if broker.get("cleanStart") is not None else broker["cleanSession"]
        return {"clean_start": clean_start, "properties": properties}

    def start(self):
        broker = self._broker
        subscriptions = [(m.topic_filter, m.qos) for m in self._mappings]
        subscriptions += [(topic, 1) for topic in self._requests.topic_filters()]
        backoff = BackoffPolicy(broker["reconnect"]["minDelay"] / 1000.0, broker["reconnect"]["maxDelay"] / 1000.0)
        self._connection = MqttConnection("mqtt:" + self.name, self._client(), broker["host"], broker["port"],
                                          broker["keepalive"], subscriptions, on_message=self._enqueue,
                                          backoff=backoff, connect_args=self._connect_args())
        self._connection.start()
        self.start_thread(self._run)

    def stopping(self):
        if self._connection is not None:
            self._connection.stop(self.close_timeout)

    def is_connected(self):
        return self._connection is not None and self._connection.is_connected()

    # -- incoming (paho's thread queues, the connector's thread works) ---------------------
    def _enqueue(self, message):
        item = (message.topic, message.payload, message.mid, message.qos, self._acks.received())
        if self._queue.put_nowait(item):
            return
        # Full: paho's network thread waits here, so the broker keeps the rest
        # (backpressure). Meanwhile it still sends the acknowledgements the storage
        # writer queued, or a crash now would make the broker redeliver all of them.
        client = self._connection.client
        while not self.stop_event.is_set():
            try:
                client.loop_write()
            except Exception:  # a broken socket is noticed by paho's loop afterwards
                log.debug("flushing acknowledgements failed", exc_info=True)
            if self._queue.put(item, timeout=0.05):
                return

    def _run(self):
        beat = self.heart().beat  # a custom converter that never returns: the supervisor restarts us
        while not self.stop_event.is_set():
            beat()
            items = self._queue.get_batch(BATCH, self._rpc_waiting.wait(self.clock(), 0.5), LINGER, self.stop_event)
            for topic, payload, mid, qos, seq in items:
                try:
                    self._handle(topic, payload, mid, qos, seq)
                except Exception as e:  # one bad message: one counted line, the traceback only at DEBUG
                    self.failures.count("conversion_error", "MQTT connector %s: the message on %s could not be "
                                                             "converted: %s: %s" % (self.name, topic, type(e).__name__,
                                                                                    str(e)[:200]), payload)
                    log.debug("MQTT connector %s: message on %s", self.name, topic, exc_info=True)
                    self._acks.done(seq, mid, qos)
            self._expire_rpcs()

    def _mapping_for(self, topic):
        # type: (str) -> Optional[Mapping]
        return remembered(self._mapping_of, topic, lambda t: next(
            (m for m in self._mappings if mqtt.topic_matches_sub(m.match, t)), None), TOPIC_CACHE)

    def _handle(self, topic, payload, mid, qos, seq):
        self._count_received()
        if self._rpc_response(topic, payload):
            self._acks.done(seq, mid, qos)
            return
        handled = self._device_requests(topic, payload)
        mapping = self._mapping_for(topic)
        if mapping is None:
            if not handled:
                self.failures.count("no_mapping", "MQTT connector %s: no mapping for topic %s" % (self.name, topic))
            self._acks.done(seq, mid, qos)
            return
        converted = self._convert(mapping, topic, payload)
        if not converted:
            self._acks.done(seq, mid, qos)
            return
        self._count_converted()
        if len(converted) == 1:  # the common case: acknowledged once its one record is stored
            self.store(converted[0], on_stored=lambda ok: self._acks.done(seq, mid, qos))
            return
        acker = Acker(self._acks, seq, mid, qos, len(converted))
        for data in converted:
            self.store(data, acker.stored)

    def _convert(self, mapping, topic, payload):
        # type: (Mapping, str, bytes) -> List[Dict[str, Any]]
        if mapping.kind == "custom":
            try:
                result = mapping.converter.convert(topic, payload)
            except Exception as e:
                self.failures.count("custom_converter", "MQTT connector %s: custom converter failed on %s: %s"
                                     % (self.name, topic, e), payload)
                return []
            return records(result)
        data = payload
        if mapping.kind == "json":
            try:
                data = payload_json.loads(payload)
            except (ValueError, RecursionError) as e:  # invalid UTF-8, not JSON, nested too deep
                self.failures.count("malformed_json", "MQTT connector %s: payload on %s is not JSON (%s)"
                                     % (self.name, topic, e), payload)
                return []
        converted, failures = mapping.converter.convert_detailed(topic, data, now_ms())
        for failure in failures:
            self.failures.count("%s:%s" % (failure.section, failure.key),
                                 "MQTT connector %s: %s %r on %s: %s (expression %s)"
                                 % (self.name, failure.section, failure.key, topic, failure.reason, failure.expression),
                                 data)
        return converted

    # -- requestsMapping ----------------------------------------------------------------------
    def _requests_for(self, topic):
        # type: (str) -> List[Any]
        """The requestsMapping entries whose topic filter `topic` matches."""
        return remembered(self._requests_of, topic, lambda t: [
            request for request in self._requests.incoming
            if mqtt.topic_matches_sub(match_filter(request.topic_filter), t)], TOPIC_CACHE)

    def _device_requests(self, topic, payload):
        # type: (str, bytes) -> bool
        if not self._requests.incoming:
            return False
        handled = False
        data = None
        for request in self._requests_for(topic):
            handled = True
            if data is None:
                try:
                    data = json.loads(payload) if payload else {}
                except (ValueError, RecursionError):
                    data = {}
            name, missing = request.name.resolve(topic, data)
            if name is None:
                self.failures.count("request_device", "MQTT connector %s: request on %s names no device (%s)"
                                     % (self.name, topic, missing), payload)
                continue
            if request in self._requests.connect:
                device_type, _ = request.type.resolve(topic, data)
                self.gateway.add_device(name, device_type or "default", self)
            elif request in self._requests.disconnect:
                self.gateway.del_device(name)
            else:
                self._attribute_request(request, name, topic, data)
        return handled

    def _attribute_request(self, request, device, topic, data):
        key, missing = request.attribute.resolve(topic, data)
        if key is None:
            self.failures.count("attribute_request", "MQTT connector %s: attribute request on %s names no "
                                                      "attribute (%s)" % (self.name, topic, missing), data)
            return

        def answer(response):
            value = response.get("value")
            if value is None and isinstance(response.get("values"), dict):
                value = response["values"].get(key)
            context = {"deviceName": device, "attributeKey": key, "attributeValue": value}
            out_topic, out_value = render(request.topic, context), render(request.value, context)
            if out_topic is not None and out_value is not None:
                self._connection.publish(str(out_topic), payload_of(out_value), 1, retain=request.retain)

        self.gateway.request_attributes(device, [key], answer, shared=request.shared)

    def on_attributes_update(self, content):
        device, data = content.get("device"), content.get("data") or {}
        for update in self._requests.attribute_updates:
            for topic, payload in update.messages(device, data):
                self._connection.publish(topic, payload, 1, retain=update.retain)

    def server_side_rpc_handler(self, content):
        device = content.get("device")
        data = content.get("data") or {}
        request_id, method = data.get("id"), data.get("method")
        route = self._requests.rpc_route(device, method)
        if route is None:
            self.gateway.send_rpc_reply(device, request_id, {"error": "no serverSideRpc entry for method %s" % method})
            return
        topic, payload, response_topic = route.request(device, request_id, method, data.get("params"))
        if topic is None:
            self.gateway.send_rpc_reply(device, request_id, {"error": "cannot build the request for %s" % method})
            return
        if response_topic is not None:
            self._rpc_waiting.add(response_topic, (device, request_id), self.clock() + route.timeout)
            self._connection.subscribe(response_topic, route.response_qos)
            self._connection.publish(topic, payload, 1)
            return
        self._connection.publish(topic, payload, 1,
                                 on_ack=lambda mid: self.gateway.send_rpc_reply(device, request_id, {"success": True}))

    def _rpc_response(self, topic, payload):
        # type: (str, bytes) -> bool
        waiting = self._rpc_waiting.take(topic)
        if waiting is None:
            return False
        device, request_id = waiting
        self._connection.unsubscribe(topic)
        try:
            result = json.loads(payload)
        except ValueError:
            result = payload.decode("utf-8", errors="replace")
        self.gateway.send_rpc_reply(device, request_id, result)
        return True

    def _expire_rpcs(self):
        for topic, (device, request_id) in self._rpc_waiting.expire(self.clock()):
            self._connection.unsubscribe(topic)
            self.failures.count("rpc_timeout", "MQTT connector %s: no response on %s in time" % (self.name, topic))
            self.gateway.send_rpc_reply(device, request_id, {"error": "timeout: no response from the device on %s"
                                                                      % topic})
