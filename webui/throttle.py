"""Slowing down password and API-key guessing.

Every failed login or API key counts against the client's address and, for a login, against the user name.
The first `free` failures of a key within `window_s` cost nothing; after that each attempt must wait
2^(n - free) seconds (at most `max_wait_s`) after the last failure, and one made earlier is answered 429 with
Retry-After, without looking at the password. A success clears the address and the user name.

The host is never locked out by someone else: failures against a user name are not held against requests
from this PC itself (127.0.0.1, ::1), so an attacker on the network who hammers the host's name slows down
only themselves and other network clients using that name; the host's own browser logs in at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

THIS_PC = frozenset({"127.0.0.1", "::1"})


class FailureThrottle:
    def __init__(self, free: int = 5, window_s: float = 600.0, max_wait_s: float = 60.0, limit: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.free, self.window_s, self.max_wait_s, self.limit = free, window_s, max_wait_s, limit
        self._clock = clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (count, last failure)
        self._lock = threading.Lock()

    def _keys(self, address: str, user: str | None) -> list[str]:
        keys = [f"address:{address}"]
        if user is not None and address not in THIS_PC:
            keys.append(f"user:{user}")
        return keys

    def wait_s(self, address: str, user: str | None = None) -> int:
        """Seconds this attempt must still wait (0: go ahead)."""
        now, longest = self._clock(), 0.0
        with self._lock:
            for key in self._keys(address, user):
                count, last = self._failures.get(key, (0, 0.0))
                if count <= self.free or now - last > self.window_s:
                    continue
                longest = max(longest, last + min(2.0 ** (count - self.free), self.max_wait_s) - now)
        return math.ceil(longest) if longest > 0 else 0

    def failed(self, address: str, user: str | None = None) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(address, user):
                count, last = self._failures.get(key, (0, 0.0))
                self._failures[key] = (1 if now - last > self.window_s else count + 1, now)
                self._failures.move_to_end(key)
            while len(self._failures) > self.limit:
                self._failures.popitem(last=False)

    def succeeded(self, address: str, user: str | None = None) -> None:
        with self._lock:
            for key in (f"address:{address}", f"user:{user}"):
                self._failures.pop(key, None)
