"""Attribute updates and RPCs as outgoing HTTP requests (REST and request connectors).

An entry of `attributeUpdates` / `serverSideRpc` is compiled once (`OutgoingRequest`):
filters (deviceNameFilter, attributeFilter / methodFilter, regular expressions), the URL
and body templates (`${deviceName}`, `${attributeKey}`, `${attributeValue}`,
`${methodName}`, `${requestId}`, `${params}`, `${params.x}`), method, headers, timeout,
tries, redirects, TLS verification and security (anonymous, basic, cert). Requests run
on the connector's `io` worker (connectors/kit.py), never on the platform connection's
thread; failed tries are retried after the delays of runtime/backoff.
"""
import base64
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.expression import compile_regex, compile_template, render
from thingsboard_gateway.runtime.backoff import BackoffPolicy

log = logging.getLogger(__name__)
# The gateway's start defers urllib.request (runtime/lean_start.py): load it here, in the
# importing thread, not first in two connector threads at once (3.7's LazyLoader has no lock).
_Request = urllib.request.Request

MAX_RESPONSE = 1024 * 1024  # bytes of a device's answer that are read
URL_SAFE = ":/?#[]@!$&'()*+,;=%~"
RETRY_MIN, RETRY_MAX = 0.5, 10.0  # seconds between the tries of a failed request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def basic_auth(username, password):
    # type: (str, str) -> str
    return "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


def ssl_context(verify, security=None):
    # type: (bool, Optional[Dict[str, Any]]) -> ssl.SSLContext
    """A client context: verification on unless SSLVerify is false; a client certificate
    for security type cert."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if security and security.get("type") == "cert":
        context.load_cert_chain(security["cert"], security.get("key"))
    return context


class OutgoingRequest(object):
    """One compiled attributeUpdates / serverSideRpc entry. `base_url` (the request
    connector's host) makes relative URLs absolute."""

    def __init__(self, entry, file, path, base_url=""):
        # type: (Dict[str, Any], str, str, str) -> None
        self.entry = entry
        self.device_filter = compile_regex(entry.get("deviceNameFilter", ".*"), file, path + ".deviceNameFilter")
        kind_filter = entry.get("methodFilter", entry.get("attributeFilter", ".*"))
        self.kind_filter = compile_regex(kind_filter, file, path + (".methodFilter" if "methodFilter" in entry
                                                                    else ".attributeFilter"))
        if "requestUrlExpression" not in entry:
            raise ConfigError(file, path + ".requestUrlExpression", "required key is missing")
        self.url = compile_template(entry["requestUrlExpression"], file, path + ".requestUrlExpression")
        value = entry.get("valueExpression", entry.get("requestValueExpression"))
        self.value = compile_template(value, file, path + ".valueExpression") if value is not None else None
        found = entry.get("responseValueExpression")  # an RPC's result is what it finds in the answer
        self.response_value = compile_template(found, file, path + ".responseValueExpression") \
            if found is not None else None
        self.method = str(entry.get("HTTPMethod", entry.get("httpMethod", "POST"))).upper()
        self.headers = dict(entry.get("httpHeaders") or {})
        self.timeout = float(entry.get("timeout", 10) or 10)
        self.tries = max(1, int(entry.get("tries", 1) or 1))
        self.redirects = bool(entry.get("allowRedirects", True))
        self.base_url = base_url
        security = entry.get("security") or {}
        if security.get("type") == "basic":
            self.headers["Authorization"] = basic_auth(security.get("username", ""), security.get("password", ""))
        self.security = security
        self.verify = bool(entry.get("SSLVerify", True))
        self._context = None  # type: Optional[ssl.SSLContext]  made at the first call (a missing cert fails that call)

    def matches(self, device, kind):
        # type: (str, str) -> bool
        return bool(self.device_filter.fullmatch(device) and self.kind_filter.fullmatch(kind))

    def render(self, values):
        # type: (Dict[str, Any]) -> Tuple[str, Optional[bytes]]
        """(absolute URL, body) for these values; ValueError when a template finds nothing."""
        # A device name with a space or non-ASCII letters is quoted, reserved characters
        # are kept: "http://h/Pump 1/set" -> "http://h/Pump%201/set" (http.client refuses the first).
        url = urllib.parse.quote(render(self.url, values), safe=URL_SAFE)
        if "://" not in url:
            if not self.base_url:
                raise ValueError("%s is no absolute URL" % url)
            url = urllib.parse.urljoin(self.base_url.rstrip("/") + "/", url.lstrip("/"))
        body = render(self.value, values).encode("utf-8") if self.value is not None else None
        return url, body

    def call(self, values, wait=None):
        # type: (Dict[str, Any], Optional[Callable[[float], bool]]) -> Tuple[int, bytes]
        """Send, trying up to `tries` times, `wait(delay)` between tries (backoff from
        RETRY_MIN s; a wait that returns true, the connector closing, ends the tries);
        (status, body) of the answer. Raises OSError / ValueError when every try failed."""
        url, body = self.render(values)
        if self._context is None and (self.security.get("type") == "cert" or not self.verify):
            self._context = ssl_context(self.verify, self.security)
        handlers = [urllib.request.HTTPSHandler(context=self._context)] if self._context is not None else []
        if not self.redirects:
            handlers.append(_NoRedirect())
        opener = urllib.request.build_opener(*handlers)
        problem = None  # type: Optional[Exception]
        backoff = BackoffPolicy(RETRY_MIN, RETRY_MAX)
        for attempt in range(self.tries):
            if attempt and wait is not None and wait(backoff.next_delay()):
                break
            request = urllib.request.Request(url, data=body if self.method not in ("GET", "HEAD") else None,
                                             headers=self.headers, method=self.method)
            try:
                with opener.open(request, timeout=self.timeout) as response:
                    return response.status, response.read(MAX_RESPONSE)
            except urllib.error.HTTPError as e:
                if e.code < 500:
                    return e.code, e.read(MAX_RESPONSE)
                problem = e
            except (OSError, ValueError) as e:  # refused, timeout, TLS, a bad URL
                problem = e
        raise OSError("%s %s failed after %d tries: %s" % (self.method, url, self.tries, problem))


    def rpc_result(self, values, wait=None):
        # type: (Dict[str, Any], Optional[Callable[[float], bool]]) -> Dict[str, Any]
        """call(), and the RPC reply made of the answer: its JSON (or text) as result, or
        what responseValueExpression finds in it."""
        result = answer(*self.call(values, wait))
        if self.response_value is not None and "result" in result:
            value, missing = self.response_value.evaluate(result["result"])
            return {"result": value} if missing is None else {"error": "%s found nothing in the answer" % missing}
        return result


def rpc_work(entries, device, method, request_id, params, wait):
    # type: (List[OutgoingRequest], str, str, Any, Any, Callable[[float], bool]) -> Any
    """The work of an RPC (the first serverSideRpc entry matching device and method: its
    result is the reply), or why there is none."""
    entry = next((e for e in entries if e.matches(device, method)), None)
    if entry is None:
        return "no serverSideRpc entry for %s on %s" % (method, device)
    values = {"deviceName": device, "methodName": method, "requestId": request_id, "params": params}
    return lambda: entry.rpc_result(values, wait)


def attribute_work(entries, device, key, value, wait):
    # type: (List[OutgoingRequest], str, str, Any, Callable[[float], bool]) -> Optional[Callable[[], None]]
    """The work of an attribute update: every attributeUpdates entry matching device and
    key sends the value; None when none matches."""
    matching = [e for e in entries if e.matches(device, key)]
    if not matching:
        return None
    values = {"deviceName": device, "attributeKey": key, "attributeValue": value}

    def work():
        for entry in matching:
            entry.call(values, wait)
    return work


def answer(status, body):
    # type: (int, bytes) -> Dict[str, Any]
    """An RPC reply from a device's HTTP answer: its JSON (or text) as result."""
    text = body.decode("utf-8", errors="replace")
    try:
        content = json.loads(text) if text else None  # type: Any
    except ValueError:
        content = text
    if status >= 400:
        return {"error": "HTTP %d" % status, "response": content}
    return {"result": content} if content is not None else {"success": True}
