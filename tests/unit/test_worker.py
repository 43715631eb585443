"""The connector kit's DeviceWorker and Schedule, driven by an injected clock."""
import logging
import threading

from thingsboard_gateway.connectors.worker import DeviceSession, DeviceWorker, SessionLost
from thingsboard_gateway.runtime.backoff import AttemptsBackoff
from thingsboard_gateway.runtime.failures import FailureLog
from thingsboard_gateway.runtime.liveness import Heart
from thingsboard_gateway.runtime.schedule import Schedule
from tests.support.waiting import wait_until
from tests.support.clock import Clock
from tests.support.recorder import RecordingGateway


# -- Schedule: the late-poll policy ---------------------------------------------------
def test_jobs_run_when_due_in_due_order():
    clock = Clock(100.0)
    schedule = Schedule(clock)
    schedule.add("slow", 5.0, first=101.0)
    schedule.add("fast", 1.0, first=100.5)
    assert schedule.pop_due() == [] and schedule.next_due() == 100.5
    clock.now = 101.0
    assert schedule.pop_due() == ["fast", "slow"]
    assert schedule.next_due() == 101.5


def test_a_late_poll_runs_once_and_keeps_its_phase_when_less_than_a_period_late():
    clock = Clock(100.0)
    schedule = Schedule(clock)
    schedule.add("poll", 1.0)
    assert schedule.pop_due() == ["poll"]
    clock.now = 101.4                      # due at 101.0, 0.4 s late
    assert schedule.pop_due() == ["poll"]
    assert schedule.next_due() == 102.0    # still on the 1 s grid


def test_polls_missed_during_a_long_stall_are_skipped_not_piled_up():
    clock = Clock(100.0)
    schedule = Schedule(clock)
    schedule.add("poll", 1.0)
    schedule.pop_due()
    clock.now = 105.3                      # five periods missed
    assert schedule.pop_due() == ["poll"]  # once
    assert schedule.pop_due() == []
    assert schedule.next_due() == 106.3    # one period from now


def test_postpone_sets_a_job_aside():
    clock = Clock(100.0)
    schedule = Schedule(clock)
    schedule.add("slave", 0.2)
    schedule.postpone("slave", 130.0)
    clock.now = 129.9
    assert schedule.pop_due() == []
    clock.now = 130.0
    assert schedule.pop_due() == ["slave"]


def test_attempts_backoff_follows_upstreams_attempt_keys():
    backoff = AttemptsBackoff(attempts=3, retry_delay=0.2, wait=30.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.2, 0.2, 30.0, 0.2, 0.2, 30.0, 0.2]
    backoff.connected()
    assert backoff.next_delay() == 0.2


# -- DeviceWorker against a scripted session ------------------------------------------
class Connector(object):
    def __init__(self):
        self.name = "test"
        self.gateway = RecordingGateway()
        self.stop_event = threading.Event()
        self.threads = []

    def heart(self, suffix=""):
        return Heart("connector:test-" + suffix)

    def start_thread(self, target, suffix=""):
        thread = threading.Thread(target=target, name="connector:test-" + suffix)
        self.threads.append(thread)
        thread.start()

    def stop(self, worker):
        self.stop_event.set()
        worker.wake()
        for thread in self.threads:
            thread.join(5)
        assert not any(t.is_alive() for t in self.threads)


class Session(DeviceSession):
    def __init__(self, refuse=0):
        self.refuse = refuse
        self.connects = self.disconnects = self.polls = 0
        self.lose_link = False

    def connect(self):
        self.connects += 1
        if self.connects <= self.refuse:
            raise OSError("refused")
        self.worker.set_online("Dev", "meter", True)
        self.worker.schedule.add("poll", 0.01)

    def disconnect(self):
        self.disconnects += 1
        self.worker.set_online("Dev", "meter", False)
        self.worker.schedule.remove("poll")

    def run_job(self, key):
        self.polls += 1
        if self.lose_link:
            self.lose_link = False
            raise SessionLost("link broke")


class Backoff(object):
    def __init__(self):
        self.delays = 0
        self.connected_calls = 0

    def next_delay(self):
        self.delays += 1
        return 0.0

    def connected(self):
        self.connected_calls += 1


def start(session, backoff=None):
    connector = Connector()
    worker = DeviceWorker(connector, "ep", session, backoff or Backoff(), FailureLog(logging.getLogger(__name__)))
    worker.start()
    return connector, worker


def test_failed_connects_back_off_and_count_then_the_device_comes_online():
    session, backoff = Session(refuse=3), Backoff()
    connector, worker = start(session, backoff)
    try:
        wait_until(lambda: session.polls >= 3, what="polls after connecting")
        assert session.connects == 4 and backoff.delays == 3 and backoff.connected_calls == 1
        assert worker.failures.snapshot() == {"connect:ep": 3}
        assert connector.gateway.events == [("add", "Dev")]
    finally:
        connector.stop(worker)
    assert connector.gateway.events[-1] == ("del", "Dev")


def test_a_lost_link_reconnects_and_reports_the_device_offline_then_online():
    session = Session()
    connector, worker = start(session)
    try:
        wait_until(lambda: session.polls >= 1)
        session.lose_link = True
        wait_until(lambda: session.connects == 2 and session.polls >= 3, what="reconnect")
        assert connector.gateway.events[:3] == [("add", "Dev"), ("del", "Dev"), ("add", "Dev")]
        assert worker.reconnects == 1
    finally:
        connector.stop(worker)


def test_tasks_run_on_the_workers_thread_and_errors_become_error_replies():
    session = Session()
    connector, worker = start(session)
    replies = []
    try:
        worker.submit(lambda: threading.current_thread().name, replies.append)
        worker.submit(lambda: 1 / 0, replies.append)
        worker.submit(lambda: (_ for _ in ()).throw(ValueError("bad value")), replies.append)
        wait_until(lambda: len(replies) == 3, what="three replies")
    finally:
        connector.stop(worker)
    assert replies[0] == "connector:test-ep"
    assert replies[1] == {"error": "ZeroDivisionError: division by zero"}
    assert replies[2] == {"error": "bad value"}


def test_a_failed_write_nobody_waits_for_is_counted():
    session = Session()
    connector, worker = start(session)
    try:
        worker.submit(lambda: (_ for _ in ()).throw(OSError("device refused")))
        wait_until(lambda: worker.failures.snapshot().get("write:ep"), what="the counted failure")
        assert worker.failures.snapshot()["write:ep"] == 1 and worker.connected  # the link stays
    finally:
        connector.stop(worker)
