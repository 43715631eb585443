"""RequestConnector: polls HTTP(S) endpoints of upstream's request.json. One DeviceWorker
(thread) per mapping, each with its own keep-alive connection, so a slow, refusing or
failing endpoint backs off on its own and never delays the others. Attribute updates and
RPCs go out as HTTP requests on one sender thread (see README.md beside this file)."""
import http.client
import json
import logging
import ssl
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.http.outgoing import (OutgoingRequest, attribute_work, basic_auth, rpc_work,
                                                          ssl_context)
from thingsboard_gateway.connectors.kit import PollingConnector, now_ms, records
from thingsboard_gateway.connectors.request import config as request_config
from thingsboard_gateway.connectors.request.uplink import items, unpack
from thingsboard_gateway.connectors.http.uplink import mapping_converter
from thingsboard_gateway.conversion.report import with_entry_strategy
from thingsboard_gateway.connectors.worker import DeviceSession, SessionLost
from thingsboard_gateway.conversion.expression import compile_template, render
from thingsboard_gateway.runtime.backoff import BackoffPolicy

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024  # bytes of a polled answer that are read
REDIRECTS = 5


class EndpointError(Exception):
    """The endpoint answered, but not with usable data (4xx, not JSON): counted, no backoff."""


class PollSession(DeviceSession):
    """One mapping: its URL polled every scanPeriod on a kept-alive connection."""

    def __init__(self, connector, index, mapping):
        # type: (RequestConnector, int, Dict[str, Any]) -> None
        self.connector = connector
        self.mapping = mapping
        self.key = "mapping[%d]" % index
        self.url = connector.absolute(mapping["url"])
        file = connector.file
        self.unpack = compile_template(mapping["dataUnpackExpression"], file, self.key + ".dataUnpackExpression") \
            if mapping["dataUnpackExpression"] else None
        self.subrequests = [(name, compile_template(sub["url"], file, "%s.subRequests.%s.url" % (self.key, name)))
                            for name, sub in mapping["subRequests"].items()]
        self.custom = mapping["converter"]["type"] == "custom"
        self.converter = mapping_converter(with_entry_strategy(mapping, mapping["converter"]), "request", file,
                                           self.key + ".converter")
        self._connections = {}  # type: Dict[Tuple[str, str, int], http.client.HTTPConnection]

    def connect(self):
        if self.key not in self.worker.schedule:
            self.worker.schedule.add(self.key, self.mapping["scanPeriod"])

    def disconnect(self):
        for connection in self._connections.values():
            connection.close()
        self._connections = {}

    # -- HTTP ------------------------------------------------------------------------------
    def _connection(self, parts):
        # type: (urllib.parse.SplitResult) -> http.client.HTTPConnection
        key = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        connection = self._connections.get(key)
        if connection is None:
            timeout = self.mapping["timeout"]
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(key[1], key[2], timeout=timeout,
                                                         context=self.connector.ssl_context())
            else:
                connection = http.client.HTTPConnection(key[1], key[2], timeout=timeout)
            self._connections[key] = connection
        return connection

    def fetch(self, url, method="GET", body=None):
        # type: (str, str, Optional[bytes]) -> bytes
        """The answer's body. SessionLost for refused/timeout/5xx (the worker backs off),
        EndpointError for a 4xx."""
        headers = dict(self.mapping["httpHeaders"])
        headers.update(self.connector.auth_headers)
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        for _ in range(REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            status, location, data = self._exchange(parts, method, path, headers, body)
            if status in (301, 302, 303, 307, 308) and location and self.mapping["allowRedirects"]:
                url = urllib.parse.urljoin(url, location)
                if status == 303:
                    method, body = "GET", None
                continue
            if status >= 500:
                raise SessionLost("%s answered HTTP %d" % (url, status))
            if status >= 400 or status in (301, 302, 303, 307, 308):
                raise EndpointError("%s answered HTTP %d" % (url, status))
            return data
        raise EndpointError("%s: more than %d redirects" % (url, REDIRECTS))

    def _exchange(self, parts, method, path, headers, body):
        # type: (urllib.parse.SplitResult, str, str, Dict[str, str], Optional[bytes]) -> Tuple[int, str, bytes]
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile is made anew once
            connection = self._connection(parts)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read(MAX_BODY + 1)
                if len(data) > MAX_BODY:
                    connection.close()
                    raise EndpointError("%s: answer over %d bytes" % (parts.geturl(), MAX_BODY))
                return response.status, response.getheader("Location") or "", data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                connection.close()
                if attempt == 2:
                    raise SessionLost("%s: %s" % (parts.geturl(), e))
            except (OSError, http.client.HTTPException) as e:  # refused, timeout, TLS, a broken answer
                connection.close()
                raise SessionLost("%s: %s: %s" % (parts.geturl(), type(e).__name__, e))
        raise SessionLost("unreachable")

    # -- the poll ----------------------------------------------------------------------------
    def run_job(self, key):
        content = self.mapping.get("content")
        body = json.dumps(content).encode("utf-8") if content is not None and self.mapping["httpMethod"] != "GET" \
            else None
        try:
            raw = self.fetch(self.url, self.mapping["httpMethod"], body)
            converted, problems = self.convert(raw)
        except EndpointError as e:
            self.connector.count("poll:" + self.key, str(e))
            return
        self.connector.counts.add("polls")
        if problems:
            self.connector.count("keys:" + self.key, "%s: %s" % (self.url, "; ".join(problems)))
        for item in converted:
            self.connector.store(item)

    def convert(self, raw):
        # type: (bytes) -> Tuple[List[Dict[str, Any]], List[str]]
        if self.custom:
            try:
                converted = self.converter.convert(self.mapping["converter"], raw)
            except Exception as e:  # the custom converter's own failure: counted, the next poll goes on
                raise EndpointError("converter failed: %s: %s" % (type(e).__name__, e))
            return records(converted), []
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise EndpointError("%s: the answer is not JSON: %s" % (self.url, e))
        if self.unpack is not None:
            try:
                data = unpack(data, self.unpack)
            except ValueError as e:
                raise EndpointError(str(e))
        data = items(data)
        problems = []  # type: List[str]
        for item in data:
            for name, template in self.subrequests:
                try:
                    item[name] = json.loads(self.fetch(self.connector.absolute(render(template, item))).decode("utf-8"))
                except (ValueError, UnicodeDecodeError, EndpointError, TypeError) as e:
                    problems.append("subRequest %s: %s" % (name, e))
        converted, failures = self.converter.convert_detailed(self.mapping["url"], data, now_ms())
        return converted, problems + ["%s %s: %s" % (f.section, f.key, f.reason) for f in failures]


def outgoing_requests(config, file):
    # type: (Dict[str, Any], str) -> Dict[str, List[OutgoingRequest]]
    """"attributeUpdates" / "serverSideRpc" -> [OutgoingRequest], relative to `host`, with
    the connector's security and SSLVerify unless an entry has its own."""
    outgoing = {}  # type: Dict[str, List[OutgoingRequest]]
    for kind in ("attributeUpdates", "serverSideRpc"):
        outgoing[kind] = []
        for index, entry in enumerate(config[kind]):
            entry = dict(entry)
            entry.setdefault("security", config["security"])
            entry.setdefault("SSLVerify", config["SSLVerify"])
            outgoing[kind].append(OutgoingRequest(entry, file, "%s[%d]" % (kind, index), config["host"]))
    return outgoing


class RequestConnector(PollingConnector):
    """Upstream-compatible request connector."""

    default_file = "request.json"
    uses_io = True  # outgoing requests (attribute updates, RPCs) run on the io worker

    @staticmethod
    def load_config(config, file, warnings=None):
        config = request_config.load(config, file, warnings)
        for index, mapping in enumerate(config["mapping"]):
            mapping_converter(mapping["converter"], "request", file, "mapping[%d].converter" % index)
        outgoing_requests(config, file)
        return config

    @staticmethod
    def describe_config(config):
        return "%s: %s" % (config["host"], ", ".join("%s every %s s" % (m["url"], m["scanPeriod"])
                                                     for m in config["mapping"]))

    def __init__(self, gateway, config, connector_type):
        super(RequestConnector, self).__init__(gateway, config, connector_type)
        security = self.settings["security"]
        self.auth_headers = {"Authorization": basic_auth(security["username"], security.get("password", ""))} \
            if security["type"] == "basic" else {}
        self.outgoing = outgoing_requests(self.settings, self.file)
        self.counts.add("polls", 0)
        self._context = None  # type: Optional[ssl.SSLContext]

    def absolute(self, url):
        # type: (str) -> str
        if "://" in url:
            return url
        return urllib.parse.urljoin(self.settings["host"].rstrip("/") + "/", url.lstrip("/"))

    def ssl_context(self):
        # type: () -> ssl.SSLContext
        if self._context is None:
            self._context = ssl_context(self.settings["SSLVerify"], self.settings["security"])
        return self._context

    def start(self):
        for index, mapping in enumerate(self.settings["mapping"]):
            session = PollSession(self, index, mapping)
            self.start_worker(session.key, session, BackoffPolicy(min(1.0, mapping["scanPeriod"]),
                                                                  max(60.0, mapping["scanPeriod"])))

    def is_connected(self):
        return self.is_alive()

    # -- platform requests (outgoing HTTP requests on the io worker) --------------------------
    def rpc_target(self, device, method, params, request_id):
        work = rpc_work(self.outgoing["serverSideRpc"], device, method, request_id, params, self.stop_event.wait)
        return work if isinstance(work, str) else (self.io, work)

    def attribute_target(self, device, key, value):
        work = attribute_work(self.outgoing["attributeUpdates"], device, key, value, self.stop_event.wait)
        return None if work is None else (self.io, work)
