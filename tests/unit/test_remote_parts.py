"""The pure parts of remote management: remote log pacing, configuration files written
with at most 10 backups, the checks a remote connector configuration must pass."""
import json
import logging
import os

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.store import BACKUPS, backups_of, write_json
from thingsboard_gateway.gateway.remote_checks import code_references
from thingsboard_gateway.gateway.remote_logs import BURST, RemoteLogs
from tests.support.clock import Clock


def logs_with(clock, sent):
    handler = RemoteLogs(sent.append, lambda: None, clock=clock, wall=clock)
    handler.set_remote_level("WARNING")
    return handler


def test_a_flood_is_paced_at_ten_a_second_and_summarized():
    clock, sent = Clock(1000.0), []
    handler = logs_with(clock, sent)
    log = logging.getLogger("thingsboard_gateway.test_flood")
    try:
        for n in range(1000):
            log.warning("warning %d", n)
        log.info("not at the remote level")
        for second in range(10):
            handler.send_pending()
            clock.now += 1.0
        total = sum(len(m) for m in sent)
        assert all(len(m) <= BURST for m in sent)
        assert total <= BURST + 10 * 10  # the burst, then ten a second
        flat = [e["values"]["LOGS"] for m in sent for e in m]
        assert any("log lines were not sent" in line for line in flat)
        assert not any("not at the remote level" in line for line in flat)
        assert handler.dropped > 900
    finally:
        handler.set_remote_level("NONE")


def test_what_is_logged_while_sending_is_not_sent_and_none_detaches():
    clock, sent = Clock(1000.0), []
    log = logging.getLogger("thingsboard_gateway.test_recursion")

    def send(entries):
        sent.append(entries)
        log.error("sending failed")  # must not come back as a line to send
    handler = RemoteLogs(send, lambda: None, clock=clock, wall=clock)
    handler.set_remote_level("ERROR")
    try:
        log.error("first")
        handler.send_pending()
        clock.now += 5
        assert handler.send_pending() is None
        assert [e["values"]["LOGS"].endswith("first") for m in sent for e in m] == [True]
    finally:
        handler.set_remote_level("NONE")
    assert handler not in logging.getLogger("thingsboard_gateway").handlers  # NONE: no cost at all


def test_files_are_replaced_with_at_most_ten_backups(tmp_path):
    path = str(tmp_path / "modbus.json")
    times = iter(range(100))
    for n in range(15):
        write_json(path, {"n": n}, clock=lambda: 1700000000 + next(times))
    assert json.load(open(path)) == {"n": 14}
    backups = backups_of(path)
    assert len(backups) == BACKUPS and json.load(open(backups[-1])) == {"n": 13}
    assert not [n for n in os.listdir(str(tmp_path)) if ".tmp" in n]


def test_every_custom_class_a_file_names_is_found():
    content = {"mapping": [{"converter": {"type": "custom", "extension": "MyConverter"}}],
               "master": {"slaves": [{"converter": "Up", "downlink_converter": "Down"}]}, "class": "Conn"}
    assert sorted(ref for _, ref in code_references(content)) == ["Conn", "Down", "MyConverter", "Up"]
    assert ("mapping[0].converter.extension", "MyConverter") in code_references(content)


def test_a_remote_connector_must_be_built_in_and_name_a_plain_file(tmp_path):
    from thingsboard_gateway.gateway.remote_checks import checked_connector

    class Config(object):
        folder = str(tmp_path)
        connectors = []
    good = {"type": "socket", "configuration": "belt.json", "configurationJson": {
        "socket": {"type": "TCP", "port": 5000}, "devices": []}}
    spec, content = checked_connector(Config(), "Belt", good, None)
    assert spec.file == "belt.json" and spec.config_path == os.path.join(str(tmp_path), "belt.json")
    for value, error in [(dict(good, configuration="../../etc/passwd.json"), "Belt: configuration: expected a plain"),
                         (dict(good, configuration="tb_gateway.json"), "Belt: configuration: expected a plain"),
                         (dict(good, type="my_plugin"), "Belt: type: expected a built-in type"),
                         (dict(good, **{"class": "Evil"}), "Belt: class: custom connector classes come only")]:
        with pytest.raises(ConfigError) as info:
            checked_connector(Config(), "Belt", value, None)
        assert str(info.value).startswith(error), str(info.value)
