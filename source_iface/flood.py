"""Slowing floods of junk at the application layer, without shutting intake.

What this module does (in memory, per worker process):

* per tenant: when an instansi has received more than ``tenant_new_cases_per_hour`` new reports
  within the last hour, further new reports get a "please wait a few minutes" page. Intake
  slows down instead of closing, and follow-ups on existing reports are not affected;
* per source (a logged-in codename): at most ``source_new_cases_per_hour`` new reports and
  ``source_follow_ups_per_hour`` follow-up messages an hour;
* per process: at most ``concurrent_kdf`` argon2id derivations (logins, registrations) at
  once; further ones queue for up to ``kdf_queue_seconds`` and are then asked to come back.
  This bounds the memory and CPU a flood of logins can take (64 MiB per derivation) without
  refusing anyone while the queue moves;
* per tenant: at most ``tenant_logins_per_minute`` codename logins a minute. Set high: a low
  limit would let anyone lock every reporter of an instansi out (a codename of 90 bits cannot
  be guessed online anyway), so it only stops floods that would starve the queue.

Why in memory rather than in the database: source-side times are stored rounded to the day on
purpose (a precise time can be matched against network logs), so the database cannot answer
"how many in the last hour". The windows here hold only monotonic timestamps under keys that are
a tenant id or a salted hash of a source id; nothing survives a restart and nothing reaches
disk. With several gunicorn workers each worker counts on its own, so the effective limit is
the limit times the number of workers: these are brakes, not exact quotas.

What lives elsewhere: the honeypot field and minimum content (the views and
:mod:`source_iface.forms`), the disk-space floor and missing keys (``wbs.intake.IntakeClosed``),
the upload size limit (the streaming parser), and the network layer (tor's
``HiddenServicePoWDefensesEnabled`` proof-of-work and ``HiddenServiceMaxStreams`` in the
torrc that ``deploy/`` provides).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class FloodLimits:
    tenant_new_cases_per_hour: int = 120
    source_new_cases_per_hour: int = 3
    source_follow_ups_per_hour: int = 20
    tenant_logins_per_minute: int = 600
    concurrent_kdf: int = 4
    kdf_queue_seconds: float = 30.0


class SlidingWindow:
    """At most ``limit`` events per key within the last ``seconds``."""

    # Keys are dropped once their events age out; this bounds memory under a flood of keys.
    MAX_KEYS = 100_000

    def __init__(
        self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("a window needs a positive limit and length")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: Hashable, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.seconds:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def retry_after(self, key: Hashable) -> int:
        """Seconds until one more event is allowed for ``key`` (0: allowed now)."""
        with self._lock:
            now = self._clock()
            events = self._prune(key, now)
            if events is None or len(events) < self.limit:
                return 0
            return max(1, math.ceil(events[0] + self.seconds - now))

    def record(self, key: Hashable) -> None:
        with self._lock:
            now = self._clock()
            events = self._prune(key, now)
            if events is None:
                if len(self._events) >= self.MAX_KEYS:
                    self._forget_oldest(now)
                events = self._events.setdefault(key, deque())
            events.append(now)

    def hit(self, key: Hashable) -> int:
        """Record an event if allowed and return 0; else return seconds to wait."""
        wait = self.retry_after(key)
        if wait == 0:
            self.record(key)
        return wait

    def _forget_oldest(self, now: float) -> None:
        for key in list(self._events):
            self._prune(key, now)
        while len(self._events) >= self.MAX_KEYS:
            del self._events[next(iter(self._events))]


class FloodGuard:
    """The windows of one app. Methods return seconds to wait, 0 meaning "go ahead"."""

    def __init__(
        self, limits: FloodLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or FloodLimits()
        self._tenant_cases = SlidingWindow(self.limits.tenant_new_cases_per_hour, 3600, clock)
        self._source_cases = SlidingWindow(self.limits.source_new_cases_per_hour, 3600, clock)
        self._source_follow_ups = SlidingWindow(
            self.limits.source_follow_ups_per_hour, 3600, clock
        )
        self._tenant_logins = SlidingWindow(self.limits.tenant_logins_per_minute, 60, clock)
        self._kdf = threading.BoundedSemaphore(self.limits.concurrent_kdf)
        # A per-process salt: the keys in memory are not the source ids themselves.
        self._salt = secrets.token_bytes(16)

    def _source_key(self, tenant_id: int, source_id: str) -> bytes:
        return hashlib.blake2b(
            f"{tenant_id}:{source_id}".encode(), key=self._salt, digest_size=16
        ).digest()

    def new_case_wait(self, tenant_id: int, source_id: str) -> int:
        return max(
            self._tenant_cases.retry_after(tenant_id),
            self._source_cases.retry_after(self._source_key(tenant_id, source_id)),
        )

    def record_new_case(self, tenant_id: int, source_id: str) -> None:
        self._tenant_cases.record(tenant_id)
        self._source_cases.record(self._source_key(tenant_id, source_id))

    def follow_up_wait(self, tenant_id: int, source_id: str) -> int:
        return self._source_follow_ups.retry_after(self._source_key(tenant_id, source_id))

    def record_follow_up(self, tenant_id: int, source_id: str) -> None:
        self._source_follow_ups.record(self._source_key(tenant_id, source_id))

    def login_wait(self, tenant_id: int) -> int:
        """Counts the attempt when it is allowed."""
        return self._tenant_logins.hit(tenant_id)

    @contextmanager
    def kdf_slot(self) -> Iterator[bool]:
        """Wait for one of the derivation slots; yields False if none freed up in time."""
        acquired = self._kdf.acquire(timeout=self.limits.kdf_queue_seconds)
        try:
            yield acquired
        finally:
            if acquired:
                self._kdf.release()


def wait_minutes(seconds: int) -> int:
    """Whole minutes to tell the pelapor (at least one)."""
    return max(1, math.ceil(seconds / 60))
