"""Hearts and the watch: a loop that stops beating beyond its bound is reported once with
its stack, the watchdog is fed only while every watched loop goes round, and feeding
resumes when it moves again. The main loop beats each round and runs what is due."""
import logging
import threading

from thingsboard_gateway.gateway.liveness import Watch
from thingsboard_gateway.gateway.main_loop import MainLoop
from thingsboard_gateway.runtime.liveness import Heart
from tests.support.clock import Clock
from tests.support.waiting import wait_until


class Notifier(object):
    watchdog_interval = 0.05

    def __init__(self):
        self.sent = []

    def notify(self, state):
        self.sent.append(state)


def test_a_heart_that_never_beat_is_not_watched():
    clock = Clock(10.0)
    watch = Watch(Notifier(), bound=5.0, clock=clock)
    watch.add(Heart("idle", clock))
    clock.advance(100)
    assert watch.check() and watch.stuck() == []


def test_a_silent_heart_is_reported_once_with_its_stack_and_again_when_it_moves(caplog):
    clock = Clock(10.0)
    watch = Watch(Notifier(), bound=5.0, clock=clock)
    heart = Heart("sender", clock)
    waiting = threading.Event()

    def loop():
        heart.attach()
        heart.beat()
        waiting.wait(10)  # a call that does not return

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        wait_until(lambda: heart.last is not None)
        watch.add(heart)
        clock.advance(4.0)
        assert watch.check()
        clock.advance(2.0)
        with caplog.at_level(logging.ERROR):
            assert not watch.check()
            assert not watch.check()
        reports = [r for r in caplog.records if "Thread sender made no progress" in r.getMessage()]
        assert len(reports) == 1 and "in loop" in reports[0].getMessage()  # where it waits
        assert watch.stuck() == ["sender"]
        heart.beat()
        assert watch.check() and watch.stuck() == []
    finally:
        waiting.set()
        thread.join(5)


def test_the_watchdog_is_fed_only_while_every_heart_goes_round():
    notifier = Notifier()
    heart = Heart("writer")
    watch = Watch(notifier, bound=0.3, period=0.02)
    watch.add(heart)
    heart.beat()
    watch.start()
    try:
        wait_until(lambda: notifier.sent.count("WATCHDOG=1") >= 2)
        wait_until(lambda: watch.stuck() == ["writer"], 5)     # no beat for 0.3 s
        fed = notifier.sent.count("WATCHDOG=1")
        threading.Event().wait(0.2)
        assert notifier.sent.count("WATCHDOG=1") == fed
        heart.beat()
        wait_until(lambda: notifier.sent.count("WATCHDOG=1") > fed, 5)
    finally:
        watch.stop()


def test_the_main_loop_runs_rounds_and_jobs_and_wakes_at_once():
    loop = MainLoop()
    rounds, jobs = [], []
    loop.each_round(lambda: rounds.append(1))
    loop.every("job", 0.05, lambda: jobs.append(1), first=0.0)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        wait_until(lambda: len(jobs) >= 3)
        assert loop.heart.last is not None
        before = len(rounds)
        loop.wake()
        wait_until(lambda: len(rounds) > before)
    finally:
        loop.stop()
        thread.join(5)
    assert not thread.is_alive() and loop.heart.last is None
