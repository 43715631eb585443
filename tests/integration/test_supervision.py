"""Supervision: failing connectors are restarted with backoff, then disabled; others run."""
import os
import threading

from thingsboard_gateway.config.loader import ConnectorSpec
from thingsboard_gateway.connectors.registry import connector_class
from thingsboard_gateway.gateway.supervisor import DISABLED, RESTARTING, RUNNING, Supervisor
from tests.support.gateway import ROOT, GatewayProcess, run_cli, simulator_entry, write_config
from tests.support.clock import Clock
from tests.support.waiting import wait_until

EXTENSIONS = os.path.join(ROOT, "tests", "extensions")
SETTINGS = {"maxFailures": 3, "minDelay": 1000, "maxDelay": 60000, "closeTimeoutMs": 1000}


def classes(type_name, class_name):
    return connector_class(type_name, class_name, dirs=[EXTENSIONS])


def test_connector_raising_in_open_is_restarted_then_disabled(tmp_path):
    counter = str(tmp_path / "opens")
    spec = ConnectorSpec("Bad", "failing", "FailingConnector", "bad.json", {"counter": counter})
    clock = Clock(100.0)
    supervisor = Supervisor([spec], gateway=None, settings=SETTINGS, clock=clock, class_for=classes)
    supervisor.start_all()
    slot = supervisor.slots[0]
    assert slot.state == RESTARTING and "simulated failure" in slot.last_error
    first_delay = slot.next_attempt - clock.now
    assert 0.8 <= first_delay <= 1.2
    supervisor.check()                      # not due yet: no attempt
    assert open(counter).read().count("open") == 1
    clock.now = slot.next_attempt
    supervisor.check()
    second_delay = slot.next_attempt - clock.now
    assert 1.6 <= second_delay <= 2.4        # backoff doubled
    clock.now = slot.next_attempt
    supervisor.check()
    assert slot.state == DISABLED and slot.failures == 3
    clock.now += 1000
    supervisor.check()
    assert open(counter).read().count("open") == 3   # disabled: no more attempts
    assert supervisor.states()["Bad"]["state"] == "disabled"


def test_connector_whose_thread_dies_is_restarted():
    spec = ConnectorSpec("Dying", "failing", "DyingConnector", "d.json", {})
    clock = Clock(100.0)
    attention = threading.Event()
    supervisor = Supervisor([spec], gateway=None, settings=SETTINGS, clock=clock, class_for=classes,
                            on_attention=attention.set)
    supervisor.start_all()
    slot = supervisor.slots[0]
    assert slot.state == RUNNING
    assert attention.wait(5)                  # its thread ended: the supervisor's owner is woken at once
    supervisor.check()
    assert slot.state == RESTARTING and "ended unexpectedly" in slot.last_error
    supervisor.stop_all()


def test_missing_class_disables_only_that_connector(tmp_path, broker, platform):
    path = write_config(str(tmp_path), broker.port,
                        connectors=[simulator_entry(),
                                    {"name": "Ghost", "type": "ghost", "class": "GhostConnector",
                                     "configuration": "ghost.json"}],
                        thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 1}},
                        files={"simulator.json": {"devices": [{"name": "S", "pollPeriod": 100,
                                                               "telemetry": [{"key": "seq", "counter": True}]}]},
                               "ghost.json": {}})
    gateway = GatewayProcess(path, env={"TB_GW_EXTENSIONS_DIR": EXTENSIONS})
    try:
        platform.wait_for(lambda msgs: any(d == "S" for d, _, _ in platform.telemetry()))
        stats = platform.wait_topic("v1/devices/me/telemetry", lambda b: "Ghost_state" in b["values"])["values"]
        assert stats["Ghost_state"] == "disabled" and stats["Simulator_state"] == "running"
        out = gateway.output()
        assert "class GhostConnector not found; searched %s" % os.path.join(EXTENSIONS, "ghost") in out
        assert "Traceback" not in out
    finally:
        gateway.kill()
    check = run_cli(["check", "--config", path], env={"TB_GW_EXTENSIONS_DIR": EXTENSIONS})
    assert check.returncode == 2
    assert "Ghost (ghost, class GhostConnector)" in check.stdout and "not found" in check.stdout


def test_failing_connector_in_a_running_gateway(tmp_path, broker, platform):
    supervision = {"maxFailures": 2, "minDelay": 100, "maxDelay": 200}
    path = write_config(str(tmp_path), broker.port,
                        connectors=[{"name": "Bad", "type": "failing", "class": "FailingConnector",
                                     "configuration": "bad.json"}],
                        thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 1}},
                        files={"bad.json": {}}, extra={"supervision": supervision})
    gateway = GatewayProcess(path, env={"TB_GW_EXTENSIONS_DIR": EXTENSIONS})
    try:
        stats = platform.wait_topic("v1/devices/me/telemetry",
                                    lambda b: b["values"].get("Bad_state") == "disabled")["values"]
        assert stats["Bad_restarts"] == 1
        assert "simulated failure in open()" in stats["Bad_last_error"]
        out = gateway.output()
        assert "Connector Bad failed (1 of 2)" in out and "Connector Bad disabled after 2 failures" in out
    finally:
        gateway.kill()


def test_custom_extension_from_extensions_dir(tmp_path, broker, platform):
    ext = tmp_path / "ext" / "mine"
    ext.mkdir(parents=True)
    (ext / "mine_connector.py").write_text(
        "from thingsboard_gateway.connectors.connector import Connector\n"
        "class MineConnector(Connector):\n"
        "    def open(self):\n"
        "        self.gateway.send_to_storage(self.name, self.id, {'deviceName': 'Mine', 'telemetry': [{'v': 1}]})\n"
        "    def close(self):\n"
        "        pass\n")
    path = write_config(str(tmp_path), broker.port,
                        connectors=[{"name": "Mine", "type": "mine", "class": "MineConnector",
                                     "configuration": "mine.json"}], files={"mine.json": {}})
    gateway = GatewayProcess(path, env={"TB_GW_EXTENSIONS_DIR": str(tmp_path / "ext")})
    try:
        platform.wait_for(lambda msgs: ("Mine", {"v": 1}) in [(d, v) for d, v, _ in platform.telemetry()])
        assert "Connector Mine disabled" not in gateway.output()
    finally:
        gateway.kill()


def test_a_class_that_is_no_connector_is_disabled_with_its_reason():
    spec = ConnectorSpec("Odd", "odd", "NotAConnector", "o.json", {})
    supervisor = Supervisor([spec], gateway=None, settings=SETTINGS, clock=Clock(100.0), class_for=lambda t, c: dict)
    supervisor.start_all()
    state = supervisor.states()["Odd"]
    assert state["state"] == "disabled" and "NotAConnector is not a subclass" in state["last_error"]


def test_by_name_while_the_connector_restarts_answers_or_says_none():
    """paho's thread looks a connector up for an RPC while the main thread restarts it:
    the slot still reads RUNNING when its instance is already gone. None, never an
    exception (the Router then answers the RPC with an error)."""
    spec = ConnectorSpec("Quick", "failing", "IdleConnector", "q.json", {})
    supervisor = Supervisor([spec], gateway=None, settings=SETTINGS, class_for=classes)
    supervisor.start_all()
    slot = supervisor.slots[0]
    assert supervisor.by_name("Quick") is slot.instance
    slot.instance = None                     # the moment in _close between the two assignments
    assert slot.state == RUNNING
    assert supervisor.by_name("Quick") is None
    supervisor.stop_all()


def test_a_connector_thread_silent_beyond_its_bound_is_restarted():
    spec = ConnectorSpec("Stuck", "failing", "StuckConnector", "s.json", {})
    clock = Clock(100.0)
    settings = dict(SETTINGS, connectorStuckMs=5000)
    supervisor = Supervisor([spec], gateway=None, settings=settings, clock=clock, class_for=classes)
    supervisor.start_all()
    slot = supervisor.slots[0]
    instance = slot.instance
    try:
        instance.clock = clock
        wait_until(lambda: instance.heart().last is not None)  # it beat once (at the real clock)
        instance.heart().last = clock.now
        clock.now += 4.0
        supervisor.check()
        assert slot.state == RUNNING                       # within its bound
        clock.now += 2.0
        supervisor.check()
        assert slot.state == RESTARTING and "made no progress for 6 s" in slot.last_error
    finally:
        instance.forever.set()
        supervisor.stop_all()
