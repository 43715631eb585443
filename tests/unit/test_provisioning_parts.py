"""Where the platform credentials come from, and the provisioning request and answer, alone."""
import json
import os
import shutil
import stat

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import load_gateway_config
from thingsboard_gateway.config.provisioning import describe, save
from thingsboard_gateway.platform.provisioning import Refused, make_certificate, request_for, security_from

PROVISIONING = {"provisionDeviceKey": "key-1234", "provisionDeviceSecret": "secret-5678"}


def write(folder, thingsboard):
    path = str(folder / "tb_gateway.json")
    with open(path, "w") as f:
        json.dump({"thingsboard": dict({"host": "127.0.0.1"}, **thingsboard), "connectors": []}, f)
    return path


def test_security_wins_then_saved_credentials_then_provisioning(tmp_path):
    path = write(tmp_path, {"provisioning": PROVISIONING})
    config = load_gateway_config(path, env={})
    assert config.credentials == "provisioning" and config.thingsboard.get("security") is None
    assert config.thingsboard["provisioning"]["type"] == "ACCESS_TOKEN"
    save(config.credentials_path, {"type": "accessToken", "accessToken": "issued"})
    assert stat.S_IMODE(os.stat(config.credentials_path).st_mode) == 0o600
    config = load_gateway_config(path, env={})
    assert config.credentials == "saved" and config.thingsboard["security"]["accessToken"] == "issued"
    path = write(tmp_path, {"provisioning": PROVISIONING, "security": {"accessToken": "mine"}})
    config = load_gateway_config(path, env={})
    assert config.credentials == "file" and config.thingsboard["security"]["accessToken"] == "mine"


def test_saved_credentials_are_written_0600_even_over_an_open_file(tmp_path):
    target = str(tmp_path / ".credentials")
    with open(target, "w") as f:
        f.write("old")
    os.chmod(target, 0o644)
    save(target, {"type": "accessToken", "accessToken": "t"})
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(os.listdir(str(tmp_path))) == [".credentials"]  # no temporary file left


def test_a_damaged_saved_file_names_itself(tmp_path):
    (tmp_path / ".credentials").write_text("{broken")
    with pytest.raises(ConfigError) as e:
        load_gateway_config(write(tmp_path, {"provisioning": PROVISIONING}), env={})
    assert ".credentials" in str(e.value) and "delete the file" in str(e.value)


def test_environment_as_upstream(tmp_path):
    env = {"TB_GW_PROVISIONING_DEVICE_KEY": "k-env-0001", "TB_GW_PROVISIONING_DEVICE_SECRET": "s-env",
           "TB_GW_PROVISIONING_DEVICE_ACCESS_TOKEN": "proposed", "TB_GW_PROVISIONING_DEVICE_CA_CERT_FILENAME": "ca.pem"}
    config = load_gateway_config(write(tmp_path, {}), env=env)
    section = config.thingsboard["provisioning"]
    assert section["provisionDeviceKey"] == "k-env-0001" and section["accessToken"] == "proposed"
    assert section["caCert"] == str(tmp_path / "ca.pem")  # relative to the config folder
    assert "s-env" not in describe(section) and "k-en..." in describe(section)


def test_requests_and_answers_of_each_type():
    assert request_for(dict(PROVISIONING, deviceName="gw"))["gateway"] is True
    token = request_for(dict(PROVISIONING, accessToken="tok"))
    assert token["credentialsType"] == "ACCESS_TOKEN" and token["token"] == "tok"
    basic = request_for(dict(PROVISIONING, type="MQTT_BASIC", username="u", password="p"))
    assert (basic["credentialsType"], basic["username"], basic["password"]) == ("MQTT_BASIC", "u", "p")
    assert security_from({"credentialsType": "ACCESS_TOKEN", "credentialsValue": "t"}, PROVISIONING) == \
        {"type": "accessToken", "accessToken": "t"}
    with_ca = security_from({"credentialsType": "ACCESS_TOKEN", "credentialsValue": "t"},
                            dict(PROVISIONING, caCert="/ca.pem"))
    assert with_ca["type"] == "tlsAccessToken" and with_ca["caCert"] == "/ca.pem"
    assert security_from({"credentialsType": "MQTT_BASIC", "credentialsValue": {"clientId": "c", "userName": "u",
                                                                                "password": "p"}}, PROVISIONING) == \
        {"type": "usernamePassword", "clientId": "c", "username": "u", "password": "p"}
    with pytest.raises(Refused):
        security_from({"credentialsType": "ACCESS_TOKEN", "credentialsValue": ""}, PROVISIONING)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
def test_x509_makes_its_own_key_and_certificate_privately(tmp_path):
    base = str(tmp_path / ".credentials")
    cert, key, pem = make_certificate(base, "pi-x509")
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    request = request_for(dict(PROVISIONING, type="X509_CERTIFICATE"), pem)
    assert request["credentialsType"] == "X509_CERTIFICATE" and request["hash"] == pem
    security = security_from({"credentialsType": "X509_CERTIFICATE", "credentialsValue": pem},
                             dict(PROVISIONING, caCert="/ca.pem"), (cert, key))
    assert security == {"type": "tlsPrivateKey", "cert": cert, "privateKey": key, "caCert": "/ca.pem",
                        "checkServerHostname": True}
    with pytest.raises(Refused):
        make_certificate(base, "x", which=lambda command: None)


def test_the_shipped_placeholder_token_gives_way_to_provisioning(tmp_path):
    path = write(tmp_path, {"security": {"accessToken": "YOUR_ACCESS_TOKEN"}})
    assert load_gateway_config(path, env={}).credentials == "file"  # no provisioning: as it was
    env = {"TB_GW_PROVISIONING_DEVICE_KEY": "k", "TB_GW_PROVISIONING_DEVICE_SECRET": "s"}
    assert load_gateway_config(path, env=env).credentials == "provisioning"


def test_credentials_that_cannot_be_saved_are_used_not_lost(tmp_path, caplog):
    """The platform registered the gateway: a folder it cannot write costs the saved file,
    not a traceback and a crash loop."""
    from tests.support.fake_platform import FakePlatform
    from thingsboard_gateway.platform.provisioning import Provisioner
    platform = FakePlatform(tokens=set(), provisioning={"key": "key-1234", "secret": "secret-5678"})
    try:
        where = tmp_path / ".credentials"
        where.mkdir()  # a folder in its place: the rename fails
        thingsboard = {"host": "127.0.0.1", "port": platform.port, "keepalive": 60,
                       "provisioning": dict(PROVISIONING, deviceName="pi-ro"),
                       "reconnect": {"minDelay": 100, "maxDelay": 200, "backoffMultiplier": 2, "jitter": 0}}
        security = Provisioner(thingsboard, str(where), lambda: False, answer_timeout=10).run()
        assert security["type"] == "accessToken" and security["accessToken"] in platform.tokens
        assert "cannot be saved" in caplog.text and "secret-5678" not in caplog.text
        assert security["accessToken"] not in caplog.text
    finally:
        platform.close()
