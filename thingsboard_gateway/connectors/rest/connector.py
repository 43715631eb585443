"""RestConnector: devices post JSON to the endpoints of `mapping`; 200 only once the data
is stored (503 with Retry-After when storage stays full), 400/401/404/405/411/413 for
bad requests; attribute requests over HTTP; attribute updates and RPCs to devices as
outgoing HTTP requests (see README.md beside this file)."""
import hmac
import json
import logging
import threading
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.connector import InvalidData
from thingsboard_gateway.connectors.http.outgoing import OutgoingRequest, attribute_work, basic_auth, rpc_work
from thingsboard_gateway.connectors.kit import ListeningConnector, now_ms, records
from thingsboard_gateway.connectors.rest import config as rest_config
from thingsboard_gateway.connectors.rest.server import Request, Response, RestServer
from thingsboard_gateway.connectors.http.uplink import mapping_converter
from thingsboard_gateway.conversion.report import with_entry_strategy
from thingsboard_gateway.conversion.expression import compile_template, render
from thingsboard_gateway.runtime.pending import Pending

log = logging.getLogger(__name__)


class Endpoint(object):
    """One `mapping` entry (kind "data": a converter) or `attributeRequests` entry (kind
    "attributes": device and attribute name templates), compiled."""

    def __init__(self, entry, kind, converter=None, device=None, attribute=None):
        # type: (Dict[str, Any], str, Any, Any, Any) -> None
        self.entry = entry
        self.kind = kind
        self.methods = entry["HTTPMethods"]
        security = entry["security"]
        self.authorization = basic_auth(security["username"], security["password"]) \
            if security["type"] == "basic" else None
        self.converter = converter
        self.custom = kind == "data" and entry["converter"]["type"] == "custom"  # gets the raw body
        self.device = device
        self.attribute = attribute

    def allows(self, request):
        # type: (Request) -> bool
        if self.authorization is None:
            return True
        given = request.headers.get("Authorization") or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.authorization.encode("utf-8"))


class Waiter(object):
    """An HTTP request waiting for the platform's answer (responseExpected)."""

    def __init__(self, attribute):
        # type: (Optional[str]) -> None
        self.attribute = attribute
        self.event = threading.Event()
        self.value = None  # type: Any


def compile_requests(config, file):
    # type: (Dict[str, Any], str) -> Tuple[Dict[str, Endpoint], Dict[str, List[OutgoingRequest]]]
    """The endpoints (path -> Endpoint) and outgoing requests ("attributeUpdates" /
    "serverSideRpc" -> [OutgoingRequest]) of a loaded file; ConfigError for a bad one."""
    endpoints = {}  # type: Dict[str, Endpoint]
    for index, mapping in enumerate(config["mapping"]):
        endpoints[mapping["endpoint"]] = Endpoint(mapping, "data", mapping_converter(
            with_entry_strategy(mapping, mapping["converter"]), "rest", file, "mapping[%d].converter" % index))
    requests = config["requestsMapping"]
    for index, entry in enumerate(requests["attributeRequests"]):
        where = "requestsMapping.attributeRequests[%d]." % index
        endpoints[entry["endpoint"]] = Endpoint(
            entry, "attributes", device=compile_template(entry["deviceNameExpression"], file,
                                                         where + "deviceNameExpression"),
            attribute=compile_template(entry["attributeNameExpression"], file, where + "attributeNameExpression"))
    outgoing = {kind: [OutgoingRequest(e, file, "requestsMapping.%s[%d]" % (kind, i))
                       for i, e in enumerate(requests[kind])] for kind in ("attributeUpdates", "serverSideRpc")}
    return endpoints, outgoing


class RestConnector(ListeningConnector):
    """Upstream-compatible REST connector."""

    default_file = "rest.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        config = rest_config.load(config, file, warnings)
        compile_requests(config, file)  # converters, templates, filters: one-line errors at check and start-up
        return config

    @staticmethod
    def describe_config(config):
        s = config["server"]
        return "%s://%s:%d, endpoints %s" % ("https" if s["SSL"] else "http", s["host"], s["port"], ", ".join(
            m["endpoint"] for m in config["mapping"] + config["requestsMapping"]["attributeRequests"]))

    def __init__(self, gateway, config, connector_type):
        super(RestConnector, self).__init__(gateway, config, connector_type)
        self.endpoints, self.outgoing = compile_requests(self.settings, self.file)
        self._waiters = Pending()  # (device, attribute or None) -> Waiter
        self.server = None  # type: Optional[RestServer]

    # -- lifecycle ------------------------------------------------------------------------
    def start(self):
        self.server = RestServer(self, self.settings["server"])  # binds now: a port in use fails the start
        self.start_thread(lambda: self.server.serve_forever(0.5), "http")

    def stopping(self):
        server = self.server
        if server is not None:
            server.shutdown()
            server.close_connections()
            for waiter in self._waiters.drain():
                waiter.event.set()
            server.server_close()  # joins the request threads

    def responded(self, status):
        # type: (int) -> None
        self.counts.add("responses_%d" % status)

    # -- requests (on the connection's thread) ---------------------------------------------
    def handle(self, request):
        # type: (Request) -> Response
        endpoint = self.endpoints.get(request.path)
        if endpoint is None:
            return 404, {}, {"error": "no endpoint %s" % request.path}
        if request.method not in endpoint.methods:
            return 405, {"Allow": ", ".join(endpoint.methods)}, {"error": "%s not allowed on %s"
                                                                        % (request.method, request.path)}
        if not endpoint.allows(request):
            return 401, {"WWW-Authenticate": 'Basic realm="thingsboard-gateway"'}, {"error": "unauthorized"}
        if endpoint.custom:
            data = request.body if request.body else request.query  # a custom converter gets the raw body
        elif request.body:
            try:
                data = json.loads(request.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                self.count("malformed:" + request.path, "malformed JSON posted to %s: %s" % (request.path, e))
                return 400, {}, {"error": "malformed JSON: %s" % e}
        else:
            data = request.query
        if endpoint.kind == "attributes":
            return self._attribute_request(endpoint, data)
        return self._data(endpoint, request.path, data)

    def _convert(self, endpoint, path, data):
        # type: (Endpoint, str, Any) -> Tuple[List[Dict[str, Any]], List[str]]
        if endpoint.custom:
            converted = endpoint.converter.convert(endpoint.entry["converter"], data)
            return records(converted), []
        converted, failures = endpoint.converter.convert_detailed(path, data, now_ms())
        return converted, ["%s %s: %s" % (f.section, f.key, f.reason) for f in failures]

    def _data(self, endpoint, path, data):
        # type: (Endpoint, str, Any) -> Response
        try:
            converted, problems = self._convert(endpoint, path, data)
        except Exception as e:  # a custom converter's own failure: the sender hears it, no traceback
            self.count("converter:" + path, "converter of %s failed: %s: %s" % (path, type(e).__name__, e))
            return 400, {}, {"error": "converter failed: %s" % e}
        if problems:
            self.count("keys:" + path, "%s: %s" % (path, "; ".join(problems)), data)
        if not converted:
            return 400, {}, {"error": "; ".join(problems) or "nothing to send"}
        response = endpoint.entry["response"]
        waiter, key = None, (converted[0]["deviceName"], response.get("responseAttribute"))
        if response["responseExpected"]:
            waiter = Waiter(key[1])
            self._waiters.add(key, waiter, self.clock() + response["timeout"])
        try:
            status, headers, content = self._store(converted)
            if status != 200 or waiter is None:
                return status, headers, content
            if not waiter.event.wait(response["timeout"]) or self.stop_event.is_set():
                return 504, {}, {"error": "stored, but no response from the platform within %s s"
                                 % response["timeout"]}
            return 200, {}, waiter.value
        finally:
            if waiter is not None:
                self._waiters.remove(key, waiter)

    def _store(self, converted):
        # type: (List[Dict[str, Any]]) -> Response
        """Hand every converted item to storage and wait until it is durable there."""
        settings = self.settings["server"]
        outcomes = []  # type: List[Any]
        done = threading.Event()

        def stored(ok):
            outcomes.append(ok)
            if len(outcomes) == len(converted):
                done.set()

        futures = [self.store(item, stored, prompt=True, delivery=True) for item in converted]
        if not done.wait(settings["storageTimeoutSec"]) or not all(outcomes):
            for future in futures:
                problem = future.exception(0) if future is not None and future.done() else None
                if isinstance(problem, InvalidData):
                    return 400, {}, {"error": str(problem)}
            return 503, {"Retry-After": str(settings["retryAfterSec"])}, {"error": "storage is full, retry later"}
        return 200, {}, {"status": "stored"}

    def _attribute_request(self, endpoint, data):
        # type: (Endpoint, Any) -> Response
        try:
            device, name = render(endpoint.device, data), render(endpoint.attribute, data)
        except ValueError as e:
            return 400, {}, {"error": str(e)}
        got = threading.Event()
        result = {}  # type: Dict[str, Any]

        def on_answer(content):
            result.update(content)
            got.set()
        self.gateway.request_attributes(device, [name], on_answer, endpoint.entry["type"] == "shared")
        if not got.wait(endpoint.entry["timeout"]):
            return 504, {}, {"error": "no answer from the platform within %s s" % endpoint.entry["timeout"]}
        result.pop("id", None)
        return 200, {}, result

    # -- platform requests ------------------------------------------------------------------
    def _answer_waiter(self, device, value, attribute=None):
        # type: (str, Any, Optional[str]) -> bool
        waiter = self._waiters.take((device, attribute))
        if waiter is None:
            return False
        waiter.value = value
        waiter.event.set()
        return True

    def rpc_target(self, device, method, params, request_id):
        if self._answer_waiter(device, params):
            return self.io, lambda: {"success": True}
        work = rpc_work(self.outgoing["serverSideRpc"], device, method, request_id, params, self.stop_event.wait)
        return work if isinstance(work, str) else (self.io, work)

    def attribute_target(self, device, key, value):
        if self._answer_waiter(device, {key: value}, key):
            return None
        work = attribute_work(self.outgoing["attributeUpdates"], device, key, value, self.stop_event.wait)
        return None if work is None else (self.io, work)
