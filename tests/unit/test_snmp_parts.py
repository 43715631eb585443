"""The SNMP connector's parts alone: values made plain, table rows, the request id check
that drops a late answer, and the example files (ours and upstream's)."""
import json
import os
import socket
import threading

import pytest

pytest.importorskip("puresnmp")  # a runtime dependency; absent only in a broken environment

from puresnmp import types as snmp_types  # noqa: E402
from puresnmp.pdu import GetResponse, VarBind  # noqa: E402
from puresnmp.x690.types import Integer, ObjectIdentifier, OctetString, Sequence  # noqa: E402
from puresnmp.x690.util import to_bytes  # noqa: E402

from tests.support.upstream import upstream_config  # noqa: E402
from thingsboard_gateway.connectors.snmp.connector import SnmpConnector  # noqa: E402
from thingsboard_gateway.connectors.snmp.protocol import Agent, AgentTimeout, plain, table_rows  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_values_are_plain():
    assert plain(OctetString(b"eth0")) == "eth0"  # not "b'eth0'"
    assert plain(OctetString(b"\x02\x42\xac\x11\x00\x02")) == "0242ac110002"  # a MAC address: hex
    assert plain(snmp_types.TimeTicks(452137)) == 4521.37  # seconds
    assert plain(snmp_types.Counter(2 ** 32 - 1)) == 4294967295 and plain(Integer(-5)) == -5
    assert plain(snmp_types.Gauge(7)) == 7 and plain(snmp_types.Counter64(2 ** 40)) == 2 ** 40
    assert plain(snmp_types.IpAddress(b"\x0a\x00\x00\x05")) == "10.0.0.5"
    assert plain(ObjectIdentifier.from_string("1.3.6.1.4.1.8072")) == "1.3.6.1.4.1.8072"


def test_table_rows_keep_every_row():
    walked = [("1.3.6.1.2.1.2.2.1.%d.%d" % (column, row), OctetString(b"r%dc%d" % (row, column)))
              for column in (1, 2) for row in (1, 2, 10)]
    rows = table_rows(walked)
    assert rows == {"1": {"1": "r1c1", "2": "r1c2"}, "2": {"1": "r2c1", "2": "r2c2"},
                    "10": {"1": "r10c1", "2": "r10c2"}}


def request_id_of(data):
    """The request id of a GET message (puresnmp decodes responses, not requests)."""
    i = data.index(b"\xa0") + 1  # the GetRequest PDU's tag, then its length
    i += 1 + (data[i] & 0x7f) if data[i] & 0x80 else 1
    assert data[i] == 2  # INTEGER
    return int.from_bytes(data[i + 2:i + 2 + data[i + 1]], "big", signed=True)


class _Responder(object):
    """A UDP peer answering each request first with a stale id, then with the right one."""

    def __init__(self, stale=True, silent=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stale, self.silent = stale, silent
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            self.requests += 1
            if self.silent:
                continue
            request_id = request_id_of(data)
            for answer_id in ([request_id - 1] if self.stale else []) + [request_id]:
                pdu = GetResponse(answer_id, [VarBind(ObjectIdentifier.from_string("1.3.6.1.2.1.1.5.0"),
                                                      OctetString(b"id-%d" % answer_id))])
                self.sock.sendto(to_bytes(Sequence(Integer(1), OctetString("public"), pdu)), peer)

    def close(self):
        self.sock.close()


def test_a_late_answer_to_another_request_is_not_taken_for_this_one():
    peer = _Responder()
    try:
        agent = Agent("127.0.0.1", peer.port, "public", 1, 1.0, 0)
        value = agent.get(["1.3.6.1.2.1.1.5.0"])[0]
        assert value.startswith("id-") and value != "id-%d" % (int(value[3:]) - 1)
        assert agent.get(["1.3.6.1.2.1.1.5.0"])[0] != value  # each request its own answer
    finally:
        peer.close()


def test_a_silent_agent_costs_timeout_times_one_plus_retries():
    peer = _Responder(silent=True)
    try:
        agent = Agent("127.0.0.1", peer.port, "public", 1, 0.1, 2)
        with pytest.raises(AgentTimeout):
            agent.get(["1.3.6.1.2.1.1.5.0"])
        assert peer.requests == 3
    finally:
        peer.close()


def test_upstreams_example_and_ours_load():
    warnings = []
    loaded = SnmpConnector.load_config(upstream_config("snmp.json"), "snmp.json", warnings)
    assert [d["versionNumber"] for d in loaded["devices"]] == [1, 1]
    assert any("CustomSNMPConverter" in w and "is not polled" in w for w in warnings)
    assert SnmpConnector.describe_config(loaded)
    with open(os.path.join(ROOT, "config", "snmp.json")) as f:
        ours = []
        assert SnmpConnector.describe_config(SnmpConnector.load_config(json.load(f), "snmp.json", ours))
    assert ours == []
