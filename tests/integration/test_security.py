"""Connecting with each security type against a real broker; refusals are logged as such."""
import os
import shutil
import subprocess
import time

import pytest

from tests.support.waiting import wait_until
from tests.support.broker import Mosquitto, free_port
from tests.support.certs import have_openssl, make_ca, make_cert
from tests.support.gateway import GatewayProcess, simulator_entry, write_config
from tests.support.platform import PlatformDouble

SIMULATOR = {"devices": [{"name": "Sec Dev", "pollPeriod": 200, "telemetry": [{"key": "seq", "counter": True}]}]}


def start(folder, port, security, env=None):
    path = write_config(folder, port, connectors=[simulator_entry()], security=security,
                        files={"simulator.json": SIMULATOR})
    return GatewayProcess(path, env=env)


def wait_for_data(platform):
    platform.wait_for(lambda msgs: any(d == "Sec Dev" for d, _, _ in platform.telemetry()), timeout=20)


@pytest.fixture
def cleanup():
    things = []
    yield things.append
    for thing in reversed(things):
        (getattr(thing, "kill", None) or getattr(thing, "close", None) or thing.stop)()


def test_access_token_is_sent_as_username(tmp_path, cleanup):
    broker = Mosquitto(str(tmp_path)).start()
    cleanup(broker)
    platform = PlatformDouble(broker.port)
    cleanup(platform)
    gateway = start(str(tmp_path), broker.port, {"type": "accessToken", "accessToken": "TOKEN_ABC"})
    cleanup(gateway)
    wait_for_data(platform)
    assert "Traceback" not in gateway.output()
    assert "u'TOKEN_ABC'" in broker.log()
    assert "TOKEN_ABC" not in gateway.output()  # secrets never logged


def _password_broker(tmp_path, users):
    if shutil.which("mosquitto_passwd") is None and not os.path.exists("/usr/bin/mosquitto_passwd"):
        pytest.skip("mosquitto_passwd is not installed")
    passwd = str(tmp_path / "passwd")
    open(passwd, "w").close()
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", passwd, user, password], check=True)
    os.chmod(passwd, 0o644)
    return Mosquitto(str(tmp_path), extra="allow_anonymous false\npassword_file %s\n" % passwd).start()


def test_username_password(tmp_path, cleanup):
    broker = _password_broker(tmp_path, {"gw": "s3cret", "platform": "p"})
    cleanup(broker)
    platform = PlatformDouble(broker.port, username="platform", password="p")
    cleanup(platform)
    gateway = start(str(tmp_path), broker.port, {"type": "usernamePassword", "clientId": "gw-client",
                                                 "username": "gw", "password": "s3cret"})
    cleanup(gateway)
    wait_for_data(platform)
    assert "gw-client" in broker.log()
    assert "s3cret" not in gateway.output()


def test_refused_credentials_are_logged_as_refusal_and_backed_off(tmp_path, cleanup):
    broker = _password_broker(tmp_path, {"gw": "right"})
    cleanup(broker)
    gateway = start(str(tmp_path), broker.port, {"type": "usernamePassword", "username": "gw", "password": "wrong"})
    cleanup(gateway)
    wait_until(lambda: gateway.output().count("connection refused") >= 2, 15, "two refusals", interval=0.2)
    out = gateway.output()
    assert out.count("connection refused") >= 2, out[-2000:]
    assert "check the access token / credentials" in out
    assert "next attempt in" in out
    assert "wrong" not in out


needs_openssl = pytest.mark.skipif(not have_openssl(), reason="the openssl command is not installed")


@pytest.fixture
def tls_broker(tmp_path):
    """Broker with a plain listener (for the platform double), a TLS listener and an mTLS listener."""
    folder = str(tmp_path)
    ca = make_ca(folder, "test-ca")
    server = make_cert(folder, ca, "server")
    tls_port, mtls_port = free_port(), free_port()
    extra = ("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
             "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n"
             % (tls_port, ca[0], server[0], server[1], mtls_port, ca[0], server[0], server[1]))
    broker = Mosquitto(folder, extra=extra).start()
    broker.tls_port, broker.mtls_port, broker.ca = tls_port, mtls_port, ca
    yield broker
    broker.stop()


@needs_openssl
def test_tls_access_token_verifies_the_server(tmp_path, tls_broker, cleanup):
    platform = PlatformDouble(tls_broker.port)
    cleanup(platform)
    gateway = start(str(tmp_path), tls_broker.tls_port,
                    {"type": "tlsAccessToken", "accessToken": "TLS_TOKEN", "caCert": tls_broker.ca[0]})
    cleanup(gateway)
    wait_for_data(platform)
    assert "u'TLS_TOKEN'" in tls_broker.log()


@needs_openssl
@pytest.mark.parametrize("kind", ["tlsPrivateKey", "tls"])   # ThingsBoard's name, and our earlier alias
def test_tls_client_certificate(tmp_path, tls_broker, cleanup, kind):
    client = make_cert(str(tmp_path), tls_broker.ca, "gateway-client", server=False)
    platform = PlatformDouble(tls_broker.port)
    cleanup(platform)
    gateway = start(str(tmp_path), tls_broker.mtls_port,
                    {"type": kind, "caCert": tls_broker.ca[0], "cert": client[0], "privateKey": client[1]})
    cleanup(gateway)
    wait_for_data(platform)
    assert "Traceback" not in gateway.output() and "TLS handshake failed" not in gateway.output()


@needs_openssl
def test_wrong_ca_is_refused(tmp_path, tls_broker, cleanup):
    other_ca = make_ca(str(tmp_path), "other-ca")
    platform = PlatformDouble(tls_broker.port)
    cleanup(platform)
    gateway = start(str(tmp_path), tls_broker.tls_port,
                    {"type": "tlsAccessToken", "accessToken": "T", "caCert": other_ca[0]})
    cleanup(gateway)
    wait_until(lambda: gateway.output().count("TLS handshake failed") >= 2, 15, "two failed handshakes",
               interval=0.2)
    out = gateway.output()
    assert "TLS handshake failed" in out and "CERTIFICATE_VERIFY_FAILED" in out, out[-2000:]
    assert not platform.telemetry()
