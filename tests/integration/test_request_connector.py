"""The request connector against a local HTTP API that can be slow, refuse, fail or lie."""

import pytest

from tests.support.broker import free_port
from tests.support.gateway import run_cli, write_config
from tests.support.http_device import HttpDevice
from tests.support.waiting import wait_until
from tests.support.upstream import upstream_config



def mapping(url, name, period=0.1, **extra):
    entry = {"url": url, "httpMethod": "GET", "timeout": 0.5, "scanPeriod": period,
             "converter": {"type": "json", "deviceNameJsonExpression": name, "deviceTypeJsonExpression": "api",
                           "attributes": [], "telemetry": [{"key": "value", "type": "double", "value": "${v}"}]}}
    entry.update(extra)
    return entry


@pytest.fixture
def api():
    device = HttpDevice("user", "pw")
    yield device
    device.close()


@pytest.fixture
def connector_for(open_connector):
    from thingsboard_gateway.connectors.request.connector import RequestConnector

    def make(host, mappings, **extra):
        config = {"name": "Request", "host": host, "security": {"type": "basic", "username": "user", "password": "pw"},
                  "mapping": mappings}
        config.update(extra)
        return open_connector(RequestConnector, config, "request")
    return make


def values(gateway, name):
    return [d["telemetry"][0]["values"]["value"] for d in gateway.sent if d["deviceName"] == name]


def test_polls_with_keep_alive_and_basic_auth(api, connector_for):
    api.routes["/good"] = (200, {"v": 1.5}, 0)
    connector, gateway = connector_for(api.url, [mapping("good", "Good")])
    wait_until(lambda: len(values(gateway, "Good")) >= 5)
    assert set(values(gateway, "Good")) == {1.5}
    assert len({r[3] for r in api.hits("/good")}) == 1  # one kept-alive connection for every poll


def test_bad_endpoints_back_off_and_never_delay_the_good_one(api, connector_for):
    api.routes.update({"/good": (200, {"v": 2}, 0), "/slow": (200, {"v": 3}, 2.0), "/fail": (503, {}, 0),
                       "/garbage": (200, b"<html>", 0), "/missing-key": (200, {"w": 1}, 0),
                       "/moved": (302, b"/good", 0)})
    refused = "http://127.0.0.1:%d/x" % free_port()
    connector, gateway = connector_for(api.url, [mapping("good", "Good"), mapping("slow", "Slow"),
                                                 mapping("fail", "Fail"), mapping("garbage", "Garbage"),
                                                 mapping(refused, "Refused"), mapping("missing-key", "Missing"),
                                                 mapping("moved", "Moved")])
    wait_until(lambda: len(values(gateway, "Good")) >= 20, timeout=15)  # 0.1 s period: nobody held it up
    assert values(gateway, "Moved")  # redirect followed
    stats = connector.statistics()
    assert stats["failures_connection:mapping[1]"] >= 1  # the slow one timed out
    assert stats["failures_connection:mapping[2]"] >= 1  # 503
    assert stats["failures_poll:mapping[3]"] >= 5        # garbage: counted every poll, no backoff
    assert stats["failures_connection:mapping[4]"] >= 1  # refused
    assert stats["failures_keys:mapping[5]"] >= 1
    assert len(api.hits("/fail")) < 10  # backed off: far fewer than the ~40 polls of its period


def test_rpc_and_attribute_update_as_requests(api, connector_for):
    api.routes.update({"/good": (200, {"v": 1}, 0), "/sensor/D1/request/echo/5": (200, {"temp": 21}, 0)})
    connector, gateway = connector_for(api.url, [mapping("good", "Good", period=60)], serverSideRpc=[
        {"deviceNameFilter": ".*", "methodFilter": "echo", "requestUrlExpression":
         "sensor/${deviceName}/request/${methodName}/${requestId}", "httpMethod": "GET",
         "responseValueExpression": "${temp}", "timeout": 1, "tries": 2}],
        attributeUpdates=[{"httpMethod": "POST", "deviceNameFilter": "D.*", "attributeFilter": "send_data",
                           "requestUrlExpression": "sensor/${deviceName}/${attributeKey}",
                           "requestValueExpression": "{\"${attributeKey}\":\"${attributeValue}\"}"}])
    connector.server_side_rpc_handler({"device": "D1", "data": {"id": 5, "method": "echo", "params": {}}})
    wait_until(lambda: gateway.replies)
    assert gateway.replies == [("D1", 5, {"result": 21})]
    connector.on_attributes_update({"device": "D1", "data": {"send_data": "on", "other": 1}})
    wait_until(lambda: api.hits("/sensor/D1/send_data"))
    assert api.hits("/sensor/D1/send_data")[0][2] == b'{"send_data":"on"}'
    assert not api.hits("/sensor/D1/other")


def test_upstream_file_unchanged_end_to_end(tmp_path, broker, platform, gateways):
    """request.json as upstream ships it (host pointed at the local API): the processingFunction
    is reported in one line and not run, and the rest of the file polls."""
    upstream = upstream_config("request.json")
    api = HttpDevice("user", "password")  # the file's credentials
    try:
        run_upstream_file(tmp_path, upstream, api, platform, broker, gateways)
    finally:
        api.close()
    assert platform.telemetry(), "the upstream file's mappings delivered nothing"


def run_upstream_file(tmp_path, upstream, api, platform, broker, gateways):
    upstream["host"] = api.url
    api.routes.update({
        "/getdata": (200, {"serial": "S-9", "Developer": "Ann", "hum": 40}, 0),
        "/get_info": (200, bytes.fromhex("41a40000" "0064" "0000" "07d0" "0000" "0000" "0011"), 0),
        "/devices": (200, [{"id": 7, "type": "UMG", "serialNr": "X", "name": "n", "description": "d"}], 0),
        "/7/hist/values/ActiveEnergy/SUM13/3600?start=RELATIVE_-1HOUR&end=RELATIVE_-1HOUR&online=false&aggregate=false":
            (200, {"values": [{"avg": 1500}]}, 0)})
    path = write_config(str(tmp_path), broker.port, files={"request.json": upstream},
                        connectors=[{"name": "Request Connector", "type": "request", "configuration": "request.json"}])
    check = run_cli(["check", "--config", path])
    out = check.stdout + check.stderr
    assert check.returncode == 0 and out.count("processingFunction") == 1, out
    gateway = gateways(path)
    platform.wait_for(lambda m: platform.latest("SD8500").get("combine") == "Ann:40")
    platform.wait_for(lambda m: platform.latest("SD8500").get("Totaliser") == 20.5)
    platform.wait_for(lambda m: "7-UMG" in [d for d, _, _ in platform.telemetry()] or
                      any(b.get("device") == "7-UMG" for b in platform.on("v1/gateway/connect")))
    assert "Traceback" not in gateway.output()
