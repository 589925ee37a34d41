"""webui/throttle.py: failed logins and keys slow the guesser down, never the host on its own PC."""

from __future__ import annotations

from webui.throttle import FailureThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_failures_past_the_free_ones_must_wait_longer_each_time_and_a_success_clears_them():
    clock = Clock()
    t = FailureThrottle(free=3, max_wait_s=60, clock=clock)
    for _ in range(3):
        assert t.wait_s("10.0.0.9", "alice") == 0
        t.failed("10.0.0.9", "alice")
    assert t.wait_s("10.0.0.9", "alice") == 0  # the free ones cost nothing
    t.failed("10.0.0.9", "alice")
    assert t.wait_s("10.0.0.9", "alice") == 2
    t.failed("10.0.0.9", "alice")
    assert t.wait_s("10.0.0.9", "alice") == 4
    clock.now += 3
    assert t.wait_s("10.0.0.9", "alice") == 1
    for _ in range(20):
        t.failed("10.0.0.9", "alice")
    assert t.wait_s("10.0.0.9", "alice") == 60  # never more than max_wait_s
    assert t.wait_s("10.0.0.7", "alice") == 60  # the user name is held from every other address
    assert t.wait_s("10.0.0.9", "bob") == 60  # and the address for every user name
    assert t.wait_s("10.0.0.7", "bob") == 0
    t.succeeded("10.0.0.9", "alice")
    assert t.wait_s("10.0.0.9", "alice") == 0


def test_the_host_on_this_pc_is_not_locked_out_by_failures_against_its_name():
    t = FailureThrottle(free=2, clock=Clock())
    for _ in range(50):
        t.failed("10.0.0.9", "host")
    assert t.wait_s("10.0.0.8", "host") > 0  # another network address: the name is held
    assert t.wait_s("127.0.0.1", "host") == 0 and t.wait_s("::1", "host") == 0


def test_old_failures_are_forgotten_after_the_window_and_past_the_limit():
    clock = Clock()
    t = FailureThrottle(free=1, window_s=60, limit=4, clock=clock)
    for _ in range(5):
        t.failed("10.0.0.9")
    assert t.wait_s("10.0.0.9") > 0
    clock.now += 61
    assert t.wait_s("10.0.0.9") == 0
    t.failed("10.0.0.9")  # counts from one again
    assert t.wait_s("10.0.0.9") == 0
    for n in range(10):
        t.failed(f"10.0.1.{n}")
    assert len(t._failures) == 4
