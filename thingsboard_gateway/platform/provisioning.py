"""ThingsBoard's device provisioning over MQTT, for the gateway's own device: connect with
the user name `provision` (empty password), subscribe `/provision/response`, publish the
request on `/provision/request`, read the answer: `status` SUCCESS with the credentials,
or NOT_FOUND / FAILURE with `errorMsg`. The request marks the device as a gateway
(`"gateway": true`, as upstream sends it) so it shows on ThingsBoard's Gateways page.

Refused or unanswered: one clear line, and the next request after the platform client's
backoff (1 s doubling to 60 s, with jitter): a few a minute, never a storm, never a crash.
The provision secret and the issued credentials are never logged.
"""
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from thingsboard_gateway.config import provisioning as settings
from thingsboard_gateway.mqtt.connection import make_client, tls_context
from thingsboard_gateway.platform.client import backoff_from_config
from thingsboard_gateway.runtime.backoff import BackoffPolicy

log = logging.getLogger(__name__)

REQUEST, RESPONSE = "/provision/request", "/provision/response"
ANSWER_TIMEOUT = 30.0


class Refused(Exception):
    """The platform answered, and not with credentials (or could not be reached)."""


def request_for(provisioning, certificate=None):
    # type: (Dict[str, Any], Optional[str]) -> Dict[str, Any]
    """The provision request of a `thingsboard.provisioning` section."""
    request = {"deviceName": settings.device_name(provisioning),
               "provisionDeviceKey": provisioning["provisionDeviceKey"],
               "provisionDeviceSecret": provisioning["provisionDeviceSecret"], "gateway": True}
    kind = provisioning.get("type", "ACCESS_TOKEN")
    if kind == "ACCESS_TOKEN" and provisioning.get("accessToken"):
        request.update(credentialsType="ACCESS_TOKEN", token=provisioning["accessToken"])
    elif kind == "MQTT_BASIC":
        request["credentialsType"] = "MQTT_BASIC"
        for key in ("clientId", "username", "password"):
            if provisioning.get(key):
                request[key] = provisioning[key]
    elif kind == "X509_CERTIFICATE":
        request.update(credentialsType="X509_CERTIFICATE", hash=certificate)
    return request


def security_from(answer, provisioning, key_files=None):
    # type: (Dict[str, Any], Dict[str, Any], Optional[Tuple[str, str]]) -> Dict[str, Any]
    """The `security` section for a SUCCESS answer."""
    kind = answer.get("credentialsType")
    value = answer.get("credentialsValue")
    ca_cert = provisioning.get("caCert")
    if kind == "ACCESS_TOKEN" and isinstance(value, str) and value:
        security = {"type": "tlsAccessToken" if ca_cert else "accessToken", "accessToken": value}
    elif kind == "MQTT_BASIC" and isinstance(value, dict):
        security = {"type": "usernamePassword"}
        for ours, theirs in (("clientId", "clientId"), ("username", "userName"), ("password", "password")):
            if value.get(theirs) or value.get(ours):
                security[ours] = value.get(theirs) or value.get(ours)
        if not (security.get("username") or security.get("clientId")):
            raise Refused("the platform's MQTT_BASIC credentials have neither a user name nor a client id")
    elif kind == "X509_CERTIFICATE" and key_files is not None:
        security = {"type": "tlsPrivateKey", "cert": key_files[0], "privateKey": key_files[1]}
    else:
        raise Refused("the platform's answer carries no usable credentials (credentialsType %r)" % (kind,))
    if ca_cert:
        security["caCert"] = ca_cert
        security["checkServerHostname"] = provisioning.get("checkServerHostname", True)
    return security


def make_certificate(base, name, which=shutil.which, run=subprocess.run):
    # type: (str, str, Callable[[str], Optional[str]], Callable[..., Any]) -> Tuple[str, str, str]
    """A key and a self-signed certificate for X.509 provisioning, made by `openssl`
    beside the saved credentials (mode 0600): (cert path, key path, the PEM)."""
    openssl = which("openssl")
    if openssl is None:
        raise Refused("X509_CERTIFICATE provisioning needs the openssl command, which is not in PATH")
    cert, key = base + ".cert.pem", base + ".key.pem"
    old_mask = os.umask(0o077)
    try:
        done = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
                    "-subj", "/CN=" + name.replace("/", "_"), "-keyout", key, "-out", cert],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    finally:
        os.umask(old_mask)
    if done.returncode != 0:
        raise Refused("openssl could not make a certificate: %s" % done.stdout.decode("utf-8", "replace")[-200:])
    with open(cert, encoding="ascii") as f:
        return cert, key, f.read()


class Provisioner(object):
    """thingsboard: the validated section (host, port, provisioning, reconnect, keepalive).
    path: where the credentials are saved. stopped() -> True once SIGTERM came (a flag a
    signal handler may set: no lock is shared with it). beat(): called at least every
    second while waiting (the systemd watchdog)."""

    def __init__(self, thingsboard, path, stopped, beat=lambda: None, backoff=None, answer_timeout=ANSWER_TIMEOUT):
        # type: (Dict[str, Any], str, Callable[[], bool], Callable[[], Any], Optional[BackoffPolicy], float) -> None
        self._tb = thingsboard
        self._provisioning = thingsboard["provisioning"]
        self._path = path
        self._stopped = stopped
        self._beat = beat
        self._backoff = backoff or backoff_from_config(thingsboard["reconnect"])
        self._answer_timeout = answer_timeout
        self.requests = 0

    def run(self):
        # type: () -> Optional[Dict[str, Any]]
        """Ask until the platform provisions this gateway: its security section, saved;
        None when stopped first."""
        log.info("Provisioning: no credentials yet; %s at %s:%s", settings.describe(self._provisioning),
                 self._tb["host"], self._tb["port"])
        last = None
        while not self._stopped():
            try:
                security = self.attempt()
            except Refused as e:
                delay = self._backoff.next_delay()
                reason = str(e)
                if reason != last:
                    log.error("Provisioning refused: %s; asking again with backoff (next in %.0f s)", reason, delay)
                else:
                    log.warning("Provisioning refused again: %s (next in %.0f s)", reason, delay)
                last = reason
                self._wait(delay)
                continue
            try:
                settings.save(self._path, security)
            except OSError as e:  # the platform registered us: run on them rather than throw them away
                log.error("Provisioned as %s, but the credentials cannot be saved in %s (%s): running with them "
                          "until stopped; the next start provisions again (make the folder writable)",
                          settings.device_name(self._provisioning), self._path, e.strerror or e)
                return security
            log.info("Provisioned as %s: credentials (%s) saved in %s", settings.device_name(self._provisioning),
                     security["type"], self._path)
            return security
        return None

    def _wait(self, seconds):
        # type: (float) -> None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopped():
            self._beat()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def attempt(self):
        # type: () -> Dict[str, Any]
        """One exchange; the security section, or Refused."""
        provisioning = self._provisioning
        key_files = certificate = None
        if provisioning.get("type") == "X509_CERTIFICATE":
            if not provisioning.get("caCert"):
                raise Refused("X509_CERTIFICATE needs TLS to the platform: set provisioning.caCert "
                              "(TB_GW_PROVISIONING_DEVICE_CA_CERT_FILENAME)")
            cert, key, certificate = make_certificate(self._path, settings.device_name(provisioning))
            key_files = (cert, key)
        self.requests += 1
        answer = self._exchange(json.dumps(request_for(provisioning, certificate)).encode())
        status = answer.get("status") or answer.get("provisionDeviceStatus")
        if status != "SUCCESS":
            raise Refused("%s: %s" % (status or "no status", str(answer.get("errorMsg") or "no reason given")[:200]))
        return security_from(answer, provisioning, key_files)

    def _exchange(self, request):
        # type: (bytes) -> Dict[str, Any]
        tb, provisioning = self._tb, self._provisioning
        tls = None
        if provisioning.get("caCert"):
            try:
                tls = tls_context(provisioning["caCert"], check_hostname=provisioning.get("checkServerHostname", True))
            except (OSError, ValueError) as e:
                raise Refused("the CA certificate %s cannot be used: %s" % (provisioning["caCert"], e))
        client = make_client("provision-" + settings.device_name(provisioning)[:40], username="provision",
                             password=None, tls=tls)
        done = threading.Event()
        outcome = {}  # type: Dict[str, Any]

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                outcome["error"] = "the platform refused the provisioning connection: %s" % reason_code
                done.set()
            else:
                client.subscribe(RESPONSE, 1)

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            client.publish(REQUEST, request, qos=1)

        def on_message(client, userdata, message):
            try:
                answer = json.loads(message.payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                answer = None
            if isinstance(answer, dict):
                outcome["answer"] = answer
            else:
                outcome["error"] = "the platform's answer is not a JSON object (%d bytes)" % len(message.payload)
            done.set()

        def on_connect_fail(client, userdata):
            outcome.setdefault("error", "cannot connect to %s:%s (refused or unreachable)" % (tb["host"], tb["port"]))
            done.set()

        def on_disconnect(client, userdata, flags, reason_code, properties):
            outcome.setdefault("error", "the platform closed the provisioning connection (%s)" % reason_code)
            done.set()

        client.on_connect, client.on_subscribe = on_connect, on_subscribe
        client.on_message, client.on_disconnect = on_message, on_disconnect
        client.on_connect_fail = on_connect_fail
        try:
            client.connect_async(tb["host"], tb["port"], tb.get("keepalive", 60))
            client.loop_start()
            deadline = time.monotonic() + self._answer_timeout
            while not done.is_set() and time.monotonic() < deadline and not self._stopped():
                self._beat()
                done.wait(0.2)
        except (OSError, ValueError) as e:
            raise Refused("cannot reach %s:%s: %s" % (tb["host"], tb["port"], e))
        finally:
            try:
                client.disconnect()
            except Exception:  # nothing documented is raised; an attempt never fails its caller
                log.debug("provisioning disconnect failed", exc_info=True)
            client.loop_stop()
        if "answer" in outcome:
            return outcome["answer"]
        if self._stopped():
            raise Refused("stopped")
        raise Refused(outcome.get("error") or "no answer from %s:%s within %.0f s"
                      % (tb["host"], tb["port"], self._answer_timeout))
