"""Slowing floods of junk at the application layer, without shutting intake.

What this module does (in memory, shared by every worker of one server):

* per tenant: when an instansi has received more than ``tenant_new_cases_per_hour`` new reports
  within the last hour, further new reports get a "please wait a few minutes" page. Intake
  slows down instead of closing, and follow-ups on existing reports are not affected;
* per source (a logged-in codename): at most ``source_new_cases_per_hour`` new reports and
  ``source_follow_ups_per_hour`` follow-up messages an hour;
* per server: at most ``concurrent_kdf`` argon2id derivations (logins, registrations) at
  once; further ones queue for up to ``kdf_queue_seconds`` and are then asked to come back.
  This bounds the memory and CPU a flood of logins can take (64 MiB per derivation) without
  refusing anyone while the queue moves;
* per tenant: at most ``tenant_logins_per_minute`` codename logins a minute. Set high: a low
  limit would let anyone lock every reporter of an instansi out (a codename of 90 bits cannot
  be guessed online anyway), so it only stops floods that would starve the queue.

Why in memory rather than in the database: source-side times are stored rounded to the day on
purpose (a precise time can be matched against network logs), so the database cannot answer
"how many in the last hour". The windows hold only monotonic timestamps under keys that are a
tenant id or a salted hash of a source id; nothing survives a restart and nothing reaches disk.

Why shared: gunicorn runs several worker processes. Counters kept in each worker's own memory
would make every limit the configured one times the number of workers, and a flood spread over
the workers would pass. So the windows live in one anonymous shared mapping
(:class:`FloodState`), made by gunicorn's master before it forks (``on_starting`` in
``deploy/gunicorn.conf.py`` calls :func:`share_with_workers`) and inherited by every worker.
It has no name and no file: it disappears with the last process. Processes exclude each other
with POSIX record locks on an unlinked temporary file, which the kernel releases when a holder
dies, so a worker killed mid-update (or holding a derivation slot) never blocks the others. A
server that is not forked (``peluit run``, the tests) uses the same code in one process.

What lives elsewhere: the honeypot field and minimum content (the views and
:mod:`source_iface.forms`), the disk-space floor and missing keys (``wbs.intake.IntakeClosed``),
the upload size limit (the streaming parser), and the network layer (tor's
``HiddenServicePoWDefensesEnabled`` proof-of-work and ``HiddenServiceMaxStreams`` in the
torrc that ``deploy/`` provides).
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import secrets
import struct
import tempfile
import threading
import time
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


# How many keys a window holds: tenants are few, sources many. When a window is full, the key
# whose latest event is oldest is forgotten (bounded memory under a flood of keys).
TENANT_KEYS = 1024
SOURCE_KEYS = 16384
# The largest limit a window counts exactly (16384 keys x 10000 times x 8 bytes: 1.3 GB).
MAX_LIMIT = 10_000
# How far a key may sit from its home slot; a full neighbourhood evicts, it never grows.
_PROBES = 16
_KEY = 16
_TIME = struct.Struct("=d")
_EMPTY = bytes(_KEY)


class ProcessLocks:
    """Exclusion between threads and between the processes forked after this was made.

    POSIX record locks on one unlinked temporary file: byte 0 guards the windows, byte 1 + i is
    derivation slot i. The kernel drops a process's record locks when it dies, so a worker
    killed while holding one blocks nobody. Record locks belong to a process, not a thread, so
    a thread lock (and, for the slots, the set this process holds) orders the threads within.
    """

    def __init__(self, slots: int = 0) -> None:
        # Open for the guard's whole life (closing any descriptor of it would drop this
        # process's locks); it holds no data, only locks.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._fd = self._file.fileno()
        self._threads = threading.Lock()
        self._slot_threads = threading.Lock()
        self._held: set[int] = set()
        self.slots = slots

    @contextmanager
    def windows(self) -> Iterator[None]:
        with self._threads:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, 0)
            try:
                yield
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, 0)

    def try_slot(self) -> int | None:
        """Take a free derivation slot of the whole server, without waiting."""
        with self._slot_threads:
            for slot in range(self.slots):
                if slot in self._held:
                    continue
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1 + slot)
                except OSError:
                    continue  # another process holds it
                self._held.add(slot)
                return slot
        return None

    def release_slot(self, slot: int) -> None:
        with self._slot_threads:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, 1 + slot)
            self._held.discard(slot)


class SlidingWindow:
    """At most ``limit`` events per key within the last ``seconds``.

    Exact, not estimated: each key keeps the times of its last ``limit`` events (oldest first)
    in an anonymous shared mapping, so processes forked after the window was made count
    together. Keys are stored as a salted hash; the salt lives only in this memory.
    """

    def __init__(
        self,
        limit: int,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        keys: int = TENANT_KEYS,
        locks: ProcessLocks | None = None,
        salt: bytes | None = None,
    ) -> None:
        if limit < 1 or seconds <= 0 or keys < 1:
            raise ValueError("a window needs a positive limit, length and size")
        if limit > MAX_LIMIT:
            # Exact windows keep every event's time: memory grows with the limit.
            raise ValueError(f"a window's limit is at most {MAX_LIMIT}, not {limit}")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._keys = keys
        self._entry = _KEY + _TIME.size * limit
        self._map = mmap.mmap(-1, keys * self._entry)  # MAP_SHARED, anonymous: no file
        self._locks = locks or ProcessLocks()
        self._salt = salt or secrets.token_bytes(16)

    def retry_after(self, key: Hashable) -> int:
        """Seconds until one more event is allowed for ``key`` (0: allowed now)."""
        with self._locks.windows():
            return self._wait(self._find(self._digest(key)))

    def record(self, key: Hashable) -> None:
        with self._locks.windows():
            self._append(self._claim(self._digest(key)))

    def hit(self, key: Hashable) -> int:
        """Record an event if allowed and return 0; else return seconds to wait."""
        with self._locks.windows():
            slot = self._claim(self._digest(key))
            wait = self._wait(slot)
            if wait == 0:
                self._append(slot)
            return wait

    # --- the table ---------------------------------------------------------------------------

    def _digest(self, key: Hashable) -> bytes:
        return hashlib.blake2b(repr(key).encode(), key=self._salt, digest_size=_KEY).digest()

    def _time(self, slot: int, index: int) -> float:
        offset = slot * self._entry + _KEY + index * _TIME.size
        value: float = _TIME.unpack_from(self._map, offset)[0]
        return value

    def _newest(self, slot: int) -> float:
        return self._time(slot, self.limit - 1)

    def _neighbourhood(self, digest: bytes) -> list[int]:
        home = int.from_bytes(digest[:8], "little") % self._keys
        return [(home + step) % self._keys for step in range(min(_PROBES, self._keys))]

    def _stored(self, slot: int) -> bytes:
        return self._map[slot * self._entry : slot * self._entry + _KEY]

    def _find(self, digest: bytes) -> int | None:
        """The slot holding ``digest``, if any."""
        for slot in self._neighbourhood(digest):
            if self._stored(slot) == digest:
                return slot
        return None

    def _claim(self, digest: bytes) -> int:
        """The slot holding ``digest``, else one made for it with no events."""
        found = self._find(digest)
        if found is not None:
            return found

        def last_used(slot: int) -> float:
            return -math.inf if self._stored(slot) == _EMPTY else self._newest(slot)

        # An empty slot, else the neighbour idle longest: expired ones first, and when every
        # neighbour is still counting, the key that is forgotten is the least active.
        slot = min(self._neighbourhood(digest), key=last_used)
        start = slot * self._entry
        self._map[start : start + _KEY] = digest
        self._map[start + _KEY : start + self._entry] = _TIME.pack(-math.inf) * self.limit
        return slot

    def _wait(self, slot: int | None) -> int:
        if slot is None:
            return 0
        oldest = self._time(slot, 0)
        now = self._clock()
        if oldest <= now - self.seconds:
            return 0
        return max(1, math.ceil(oldest + self.seconds - now))

    def _append(self, slot: int) -> None:
        times = slot * self._entry + _KEY
        end = times + _TIME.size * self.limit
        self._map[times : end - _TIME.size] = self._map[times + _TIME.size : end]
        _TIME.pack_into(self._map, end - _TIME.size, self._clock())


class FloodGuard:
    """The windows of one server. Methods return seconds to wait, 0 meaning "go ahead".

    Made in the process that forks the workers (:func:`share_with_workers`), it is one guard
    for all of them; made in a worker, it counts for that worker only.
    """

    def __init__(
        self, limits: FloodLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits = limits or FloodLimits()
        self._locks = ProcessLocks(slots=limits.concurrent_kdf)
        salt = secrets.token_bytes(16)

        def window(limit: int, seconds: float, keys: int) -> SlidingWindow:
            return SlidingWindow(
                limit, seconds, clock, keys=keys, locks=self._locks, salt=salt
            )

        self._tenant_cases = window(limits.tenant_new_cases_per_hour, 3600, TENANT_KEYS)
        self._source_cases = window(limits.source_new_cases_per_hour, 3600, SOURCE_KEYS)
        self._source_follow_ups = window(limits.source_follow_ups_per_hour, 3600, SOURCE_KEYS)
        self._tenant_logins = window(limits.tenant_logins_per_minute, 60, TENANT_KEYS)

    def new_case_wait(self, tenant_id: int, source_id: str) -> int:
        return max(
            self._tenant_cases.retry_after(tenant_id),
            self._source_cases.retry_after((tenant_id, source_id)),
        )

    def record_new_case(self, tenant_id: int, source_id: str) -> None:
        self._tenant_cases.record(tenant_id)
        self._source_cases.record((tenant_id, source_id))

    def follow_up_wait(self, tenant_id: int, source_id: str) -> int:
        return self._source_follow_ups.retry_after((tenant_id, source_id))

    def record_follow_up(self, tenant_id: int, source_id: str) -> None:
        self._source_follow_ups.record((tenant_id, source_id))

    def login_wait(self, tenant_id: int) -> int:
        """Counts the attempt when it is allowed."""
        return self._tenant_logins.hit(tenant_id)

    @contextmanager
    def kdf_slot(self) -> Iterator[bool]:
        """Wait for one of the server's derivation slots; yields False if none freed in time."""
        deadline = time.monotonic() + self.limits.kdf_queue_seconds
        slot = self._locks.try_slot()
        while slot is None and time.monotonic() < deadline:
            time.sleep(_SLOT_POLL_SECONDS)
            slot = self._locks.try_slot()
        try:
            yield slot is not None
        finally:
            if slot is not None:
                self._locks.release_slot(slot)


# A waiting derivation looks for a free slot this often. A derivation takes about half a
# second, so this adds little to a queue that moves, and costs nothing measurable.
_SLOT_POLL_SECONDS = 0.05

_SHARED: FloodGuard | None = None


def share_with_workers(limits: FloodLimits | None = None) -> None:
    """Make the one guard every worker forked from now on will use (gunicorn's master)."""
    global _SHARED
    _SHARED = FloodGuard(limits)


def shared_guard() -> FloodGuard | None:
    """The guard made by :func:`share_with_workers` in a parent process, if any."""
    return _SHARED


def wait_minutes(seconds: int) -> int:
    """Whole minutes to tell the pelapor (at least one)."""
    return max(1, math.ceil(seconds / 60))
