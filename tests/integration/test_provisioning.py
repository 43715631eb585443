"""A fleet flashed from one image: the gateway provisions itself with ThingsBoard's device
provisioning API against a platform double that authenticates CONNECTs by token (others
get "not authorized") and serves the provisioning exchange (tests/support/fake_platform.py)."""
import json
import os
import stat
import time

import pytest

from tests.support.certs import have_openssl, make_ca, make_cert
from tests.support.fake_platform import FakePlatform
from tests.support.gateway import GatewayProcess, run_cli, simulator_entry, write_config
from tests.support.waiting import wait_until

KEY, SECRET = "fleet-key-7f3a", "Pr0v-S3cret-never-logged"
SIMULATOR = {"devices": [{"name": "Sim P", "type": "probe", "pollPeriod": 200,
                          "telemetry": [{"key": "seq", "counter": True}]}]}


@pytest.fixture
def fake():
    platform = FakePlatform(tokens=set(), provisioning={"key": KEY, "secret": SECRET})
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture
def gateways():
    started = []

    def start(path, env=None):
        gateway = GatewayProcess(path, env=env)
        started.append(gateway)
        return gateway
    try:
        yield start
    finally:
        for gateway in started:
            gateway.kill()


def config(folder, port, provisioning=None):
    path = write_config(str(folder), port, connectors=[simulator_entry()], files={"simulator.json": SIMULATOR},
                        thingsboard={"sessionLimitsTimeoutMs": 0})
    with open(path) as f:
        raw = json.load(f)
    del raw["thingsboard"]["security"]  # the image carries no credentials
    if provisioning is not None:
        raw["thingsboard"]["provisioning"] = provisioning
    with open(path, "w") as f:
        json.dump(raw, f)
    return path


def data_from(fake, device="Sim P"):
    """The telemetry messages carrying the device's data."""
    return [p for p in list(fake.published) if p.topic == "v1/gateway/telemetry" and device in p.body]


def secrets_absent(text, *secrets):
    return not [s for s in secrets if s and s in text]


def test_first_boot_provisions_saves_privately_and_never_asks_again(tmp_path, fake, gateways):
    path = config(tmp_path, fake.port, {"provisionDeviceKey": KEY, "provisionDeviceSecret": SECRET,
                                        "deviceName": "pi-17"})
    checked = run_cli(["check", "--config", path])
    assert checked.returncode == 0 and "will provision as pi-17 with key" in checked.stdout
    assert secrets_absent(checked.stdout + checked.stderr, SECRET)
    gateway = gateways(path)
    fake.wait_for(lambda: data_from(fake), 30)
    request = fake.provision_requests[0]
    assert request == {"deviceName": "pi-17", "provisionDeviceKey": KEY, "provisionDeviceSecret": SECRET,
                       "gateway": True}
    saved = os.path.join(str(tmp_path), ".credentials")
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    with open(saved) as f:
        security = json.load(f)
    token = security["accessToken"]
    assert security["type"] == "accessToken" and token in fake.tokens
    code, _ = gateway.terminate()
    assert code == 0
    output = gateway.output()
    assert "Provisioned as pi-17" in output and secrets_absent(output, SECRET, token)
    # the next start uses the saved credentials: no second request
    again = gateways(path)
    before = len(data_from(fake))
    fake.wait_for(lambda: len(data_from(fake)) > before, 30)
    assert len(fake.provision_requests) == 1
    assert again.terminate()[0] == 0
    checked = run_cli(["check", "--config", path])
    assert "saved by provisioning in" in checked.stdout and secrets_absent(checked.stdout, SECRET, token)
    # deleting the saved credentials provisions again
    os.unlink(saved)
    fake.devices.clear()  # the operator deleted the device on the platform too
    third = gateways(path)
    fake.wait_for(lambda: len(fake.provision_requests) == 2, 30)
    wait_until(lambda: os.path.exists(saved), 10, "the new credentials")
    assert third.terminate()[0] == 0


def test_refused_provisioning_backs_off_and_sigterm_exits_0(tmp_path, fake, gateways):
    path = config(tmp_path, fake.port, {"provisionDeviceKey": KEY, "provisionDeviceSecret": "wrong-" + SECRET})
    gateway = gateways(path)
    wait_until(lambda: "Provisioning refused" in gateway.output(), 20, "the refusal")
    time.sleep(4.0)
    requests = len(fake.provision_requests)
    assert 2 <= requests <= 8  # backoff 0.2 s doubling to 1 s here (1 s to 60 s by default): no storm
    code, seconds = gateway.terminate()
    output = gateway.output()
    assert code == 0 and seconds < 5
    assert "NOT_FOUND: Provision data was not found!" in output
    assert output.count("Provisioning refused:") == 1  # the same reason again is a shorter warning
    assert "Traceback" not in output and secrets_absent(output, SECRET)
    assert not os.path.exists(os.path.join(str(tmp_path), ".credentials"))


def test_revoked_credentials_say_so_and_do_not_provision_again(tmp_path, fake, gateways):
    path = config(tmp_path, fake.port, {"provisionDeviceKey": KEY, "provisionDeviceSecret": SECRET,
                                        "deviceName": "pi-18"})
    gateway = gateways(path)
    fake.wait_for(lambda: data_from(fake), 30)
    assert gateway.terminate()[0] == 0
    with open(os.path.join(str(tmp_path), ".credentials")) as f:
        token = json.load(f)["accessToken"]
    fake.revoke(token)
    again = gateways(path)
    wait_until(lambda: "revoked on the platform?" in again.output(), 20, "the revocation line")
    time.sleep(2.0)
    assert len(fake.provision_requests) == 1 and fake.refused >= 1
    assert "delete that file" in again.output()
    code, _ = again.terminate()
    assert code == 0 and secrets_absent(again.output(), SECRET, token)


def test_environment_variables_as_upstream_and_mqtt_basic(tmp_path, fake, gateways):
    path = config(tmp_path, fake.port)
    env = {"TB_GW_PROVISIONING_DEVICE_KEY": KEY, "TB_GW_PROVISIONING_DEVICE_SECRET": SECRET,
           "TB_GW_PROVISIONING_DEVICE_NAME": "pi-env", "TB_GW_PROVISIONING_DEVICE_USERNAME": "pi-env-user",
           "TB_GW_PROVISIONING_DEVICE_PASSWORD": "pi-env-password", "TB_GW_PROVISIONING_DEVICE_CLIENT_ID": "pi-env-c"}
    checked = run_cli(["check", "--config", path], env=env)
    assert "will provision as pi-env" in checked.stdout and "MQTT_BASIC" in checked.stdout
    gateway = gateways(path, env=env)
    fake.wait_for(lambda: data_from(fake), 30)
    request = fake.provision_requests[0]
    assert request["credentialsType"] == "MQTT_BASIC" and request["username"] == "pi-env-user"
    with open(os.path.join(str(tmp_path), ".credentials")) as f:
        security = json.load(f)
    assert security == {"type": "usernamePassword", "clientId": "pi-env-c", "username": "pi-env-user",
                        "password": "pi-env-password"}
    code, _ = gateway.terminate()
    assert code == 0 and secrets_absent(gateway.output(), SECRET, "pi-env-password")


def test_no_security_and_no_provisioning_is_a_clear_error(tmp_path):
    path = config(tmp_path, 1883)
    checked = run_cli(["check", "--config", path])
    assert checked.returncode == 2 and "provisioning" in checked.stderr and "Traceback" not in checked.stderr
    checked = run_cli(["check", "--config", path], env={"TB_GW_PROVISIONING_DEVICE_KEY": KEY})
    assert checked.returncode == 2 and "both needed" in checked.stderr


@pytest.mark.skipif(not have_openssl(), reason="the openssl command is not installed")
def test_x509_certificate_provisioning_then_tls_with_it(tmp_path, gateways):
    folder = str(tmp_path)
    ca = make_ca(folder)
    server = make_cert(folder, ca, "platform")
    fake = FakePlatform(tokens=set(), provisioning={"key": KEY, "secret": SECRET}, tls=server)
    try:
        path = config(tmp_path, fake.port, {"type": "X509_CERTIFICATE", "provisionDeviceKey": KEY,
                                            "provisionDeviceSecret": SECRET, "deviceName": "pi-x509",
                                            "caCert": os.path.basename(ca[0])})
        gateway = gateways(path)
        fake.wait_for(lambda: data_from(fake), 60)  # connected over TLS with its own certificate
        request = fake.provision_requests[0]
        assert request["credentialsType"] == "X509_CERTIFICATE" and "BEGIN CERTIFICATE" in request["hash"]
        with open(os.path.join(folder, ".credentials")) as f:
            security = json.load(f)
        assert security["type"] == "tlsPrivateKey" and security["caCert"] == ca[0]
        assert stat.S_IMODE(os.stat(security["privateKey"]).st_mode) == 0o600
        assert gateway.terminate()[0] == 0 and "PRIVATE KEY" not in gateway.output()
    finally:
        fake.close()
