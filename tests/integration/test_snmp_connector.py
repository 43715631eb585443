"""The SNMP connector end to end against Debian's net-snmp agent (snmpd), with snmpget,
snmpwalk and snmpset as the reference: every method, SET by attribute update and RPC, an
agent stopped and started, a wrong community, a missing OID, 50 devices at 1 s."""
import json
import os
import time

import pytest

from tests.support.gateway import GatewayProcess, write_config
from tests.support.snmp_agent import PRIVATE, SnmpAgent, free_udp_port, have_snmpd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.skipif(not have_snmpd(), reason="net-snmp's snmpd and snmpget are not installed "
                                                         "(apt-get install -y snmpd snmp)")

SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.3.0"
SYS_CONTACT, SYS_NAME, SYSTEM, IF_TABLE = "1.3.6.1.2.1.1.4.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1", "1.3.6.1.2.1.2.2"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"


def device(name, port, poll=500, **extra):
    entry = {"deviceName": name, "deviceType": "switch", "ip": "127.0.0.1", "port": port, "pollPeriod": poll,
             "community": "public", "version": "v2c", "timeout": 0.5, "retries": 1,
             "attributes": [{"key": "descr", "method": "get", "oid": SYS_DESCR},
                            {"key": "both", "method": "multiget", "oid": [SYS_DESCR, SYS_OBJECT_ID]},
                            {"key": "next", "method": "getnext", "oid": SYS_DESCR},
                            {"key": "system", "method": "walk", "oid": SYSTEM},
                            {"key": "bulk", "method": "bulkget", "scalarOid": [SYS_DESCR],
                             "repeatingOid": [IF_DESCR], "maxListSize": 2},
                            {"key": "names", "method": "bulkwalk", "oid": [IF_DESCR]},
                            {"key": "two", "method": "multiwalk", "oid": ["1.3.6.1.2.1.1.5", "1.3.6.1.2.1.1.6"]},
                            {"key": "nexts", "method": "multigetnext", "oid": [SYS_DESCR, SYS_OBJECT_ID]}],
             "telemetry": [{"key": "uptime", "method": "get", "oid": SYS_UPTIME},
                           {"key": "interfaces", "method": "table", "oid": IF_TABLE, "numBaseNodes": 9},
                           {"key": "bulk_interfaces", "method": "bulktable", "oid": IF_TABLE, "bulkSize": 7}],
             "attributeUpdateRequests": [{"attributeFilter": "contact", "method": "set", "oid": SYS_CONTACT,
                                          "community": PRIVATE},
                                         {"attributeFilter": "naming", "method": "multiset", "community": PRIVATE,
                                          "mappings": {SYS_NAME: "${attribute}"}}],
             "serverSideRpcRequests": [{"requestFilter": "getContact", "method": "get", "oid": SYS_CONTACT},
                                       {"requestFilter": "setName", "method": "set", "oid": SYS_NAME,
                                        "community": PRIVATE},
                                       {"requestFilter": "walkSystem", "method": "walk", "oid": SYSTEM}]}
    entry.update(extra)
    return entry


@pytest.fixture
def agent(tmp_path):
    running = SnmpAgent(str(tmp_path)).start()
    try:
        yield running
    finally:
        running.close()


def start(tmp_path, broker, devices, gateways):
    path = write_config(str(tmp_path), broker.port, connectors=[{"name": "Switches", "type": "snmp",
                                                                 "configuration": "snmp.json"}],
                        files={"snmp.json": {"devices": devices}})
    return gateways(path)


def latest_attributes(platform, name):
    values = {}
    for body in platform.on("v1/gateway/attributes"):
        if isinstance(body.get(name), dict) and "connectorName" not in body[name]:
            values.update(body[name])
    return values


def test_every_method_as_upstream_means_it(tmp_path, broker, platform, agent, gateways):
    gateway = start(tmp_path, broker, [device("Core switch", agent.port)], gateways)
    wait_until(lambda: "interfaces" in platform.latest("Core switch"), 20, "a poll")
    wait_until(lambda: "names" in latest_attributes(platform, "Core switch"), 10, "the attributes")
    attributes, telemetry = latest_attributes(platform, "Core switch"), platform.latest("Core switch")
    descr = agent.get(SYS_DESCR)
    assert attributes["descr"] == descr.strip('"')  # text, not b'...'
    assert attributes["both"] == "%s,%s" % (descr.strip('"'), agent.get(SYS_OBJECT_ID).lstrip("."))
    assert attributes["next"] == {SYS_OBJECT_ID: agent.get(SYS_OBJECT_ID).lstrip(".")}
    reference = dict(agent.walk(SYSTEM))
    assert set(attributes["system"]) == set(reference)
    assert attributes["system"][SYS_DESCR] == descr.strip('"')
    interfaces = [value.strip('"') for _, value in agent.walk(IF_DESCR)]
    assert list(attributes["names"].values()) == interfaces
    # GETBULK is GETNEXT-based: the scalar's successor, then 2 rows of the repeating column
    assert list(attributes["bulk"]) == [SYS_OBJECT_ID] + [oid for oid, _ in agent.walk(IF_DESCR)][:2]
    assert set(attributes["two"]) == {oid for oid, _ in agent.walk("1.3.6.1.2.1.1.5") + agent.walk("1.3.6.1.2.1.1.6")}
    assert list(attributes["nexts"]) == [SYS_OBJECT_ID, SYS_UPTIME]
    assert isinstance(telemetry["uptime"], (int, float)) and telemetry["uptime"] > 0  # seconds, not a timedelta
    table = telemetry["interfaces"]  # every row, none overwritten
    assert len(table) == len(interfaces) and sorted(row["2"] for row in table.values()) == sorted(interfaces)
    assert {row: columns["2"] for row, columns in telemetry["bulk_interfaces"].items()} == \
        {row: columns["2"] for row, columns in table.items()}  # GETBULK walks the same table
    code, _ = gateway.terminate()
    assert code == 0 and "Traceback" not in gateway.output()


def test_set_by_attribute_update_and_rpc(tmp_path, broker, platform, agent, gateways):
    start(tmp_path, broker, [device("Core switch", agent.port)], gateways)
    platform.wait_topic("v1/gateway/connect", lambda b: b.get("device") == "Core switch", timeout=20)
    platform.shared_attributes("Core switch", {"contact": "noc@example.org"})
    wait_until(lambda: agent.get(SYS_CONTACT) == '"noc@example.org"', 10, "the SET of the attribute")
    platform.shared_attributes("Core switch", {"naming": "core-1"})
    wait_until(lambda: agent.get(SYS_NAME) == '"core-1"', 10, "the multiset")
    request = platform.device_rpc("Core switch", "getContact", {})
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "data" in b)
    assert reply["data"] == {"value": "noc@example.org"}
    request = platform.device_rpc("Core switch", "setName", {"value": "core-2"})
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "data" in b)
    assert reply["data"]["success"] is True and agent.get(SYS_NAME) == '"core-2"'
    request = platform.device_rpc("Core switch", "nothing", {})
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "data" in b)
    assert "no serverSideRpcRequests entry" in reply["data"]["error"]


def test_agent_away_wrong_community_and_missing_oid_cost_only_themselves(tmp_path, broker, platform, agent, gateways):
    other = SnmpAgent(str(tmp_path), "other").start()
    try:
        missing = device("Edge", other.port, telemetry=[{"key": "uptime", "method": "get", "oid": SYS_UPTIME},
                                                        {"key": "ghost", "method": "get", "oid": "1.3.6.1.2.1.99.0"}])
        wrong = device("Guarded", agent.port, community="not-the-community", attributes=[],
                       telemetry=[{"key": "uptime", "method": "get", "oid": SYS_UPTIME}])
        gateway = start(tmp_path, broker, [device("Core switch", agent.port, poll=300, attributes=[]), missing, wrong],
                        gateways)
        wait_until(lambda: "uptime" in platform.latest("Edge") and "uptime" in platform.latest("Core switch"), 20,
                   "both agents")
        other.stop()
        time.sleep(1.0)
        before = len([1 for d, v, _ in platform.telemetry() if d == "Core switch"])
        time.sleep(3.0)
        after = len([1 for d, v, _ in platform.telemetry() if d == "Core switch"])
        assert after - before >= 6  # 300 ms period kept while the other agent is away (timeout 0.5 s x 2)
        other.start()  # the same port
        seen = len([1 for d, v, _ in platform.telemetry() if d == "Edge"])
        wait_until(lambda: len([1 for d, v, _ in platform.telemetry() if d == "Edge"]) > seen, 20, "polling resumes")
        output = gateway.output()
        assert "SNMP device Edge: key ghost: no such object at 1.3.6.1.2.1.99.0" in output
        assert "SNMP device Guarded: no answer from 127.0.0.1:%d" % agent.port in output
        assert "community not accepted" in output
        assert output.count("key ghost: no such object") <= 2  # rate-limited (30 s per kind)
        assert "Traceback" not in output
        assert "Guarded" not in [d for d, _, _ in platform.telemetry()]
        code, _ = gateway.terminate()
        assert code == 0
    finally:
        other.close()


def test_fifty_devices_at_one_second_and_a_dead_one(tmp_path, broker, platform, agent, gateways):
    small = {"attributes": [], "telemetry": [{"key": "uptime", "method": "get", "oid": SYS_UPTIME},
                                             {"key": "descr", "method": "get", "oid": SYS_DESCR}],
             "attributeUpdateRequests": [], "serverSideRpcRequests": []}
    devices = [device("PDU %02d" % n, agent.port, poll=1000, **small) for n in range(50)]
    devices.append(device("Dead", free_udp_port(), poll=1000, **small))
    gateway = start(tmp_path, broker, devices, gateways)
    wait_until(lambda: len({d for d, _, _ in platform.telemetry()}) >= 50, 30, "all 50 devices")
    first = {name: 0 for name in ("PDU %02d" % n for n in range(50))}
    for name, _, _ in platform.telemetry():
        if name in first:
            first[name] += 1
    time.sleep(6.0)
    counts = dict.fromkeys(first, 0)
    for name, _, _ in platform.telemetry():
        if name in counts:
            counts[name] += 1
    gained = [counts[name] - first[name] for name in counts]
    assert min(gained) >= 4, gained  # every device kept its 1 s period (6 s), the dead one cost only itself
    assert "Traceback" not in gateway.output()
