"""The flood counters are one for the whole server: processes forked after they were made count
together, and a process that dies holding a lock or a derivation slot blocks nobody."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from source_iface import flood, wsgi
from source_iface.flood import FloodGuard, FloodLimits, SlidingWindow
from wbs.config import Config
from wbs.instance import init_instance

REPO = Path(__file__).resolve().parents[2]
FORK = multiprocessing.get_context("fork")


def _in_children(target, *args_per_child) -> None:  # type: ignore[no-untyped-def]
    children = [FORK.Process(target=target, args=args) for args in args_per_child]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0


def test_workers_forked_from_one_guard_share_its_limits() -> None:
    # As gunicorn does: the master makes the guard, then forks the workers.
    guard = FloodGuard(FloodLimits(tenant_new_cases_per_hour=3, source_follow_ups_per_hour=2))

    def report(source: str) -> None:
        assert guard.new_case_wait(7, source) == 0
        guard.record_new_case(7, source)

    def follow_up() -> None:
        guard.record_follow_up(7, "a" * 64)

    _in_children(report, ("a" * 64,), ("b" * 64,), ("c" * 64,))
    # Three reports, each in its own process: the tenant's hour is full for everyone, including
    # the parent and a process forked later. Counted per process, each would still have room.
    assert guard.new_case_wait(7, "d" * 64) > 0
    assert guard.new_case_wait(8, "d" * 64) == 0  # another tenant is not affected
    _in_children(follow_up, (), ())
    assert guard.follow_up_wait(7, "a" * 64) > 0
    assert guard.follow_up_wait(7, "b" * 64) == 0


def test_a_derivation_slot_is_held_across_processes_and_freed_when_its_holder_dies() -> None:
    guard = FloodGuard(FloodLimits(concurrent_kdf=1, kdf_queue_seconds=0.3))
    held = FORK.Event()

    def hold() -> None:
        with guard.kdf_slot() as got:
            assert got
            held.set()
            time.sleep(60)  # until killed (an Event here would be left locked by the kill)

    holder = FORK.Process(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with guard.kdf_slot() as got:
            assert not got  # the server's only slot is taken, by another process
        os.kill(holder.pid, signal.SIGKILL)  # type: ignore[arg-type]
        holder.join(30)
        with guard.kdf_slot() as got:
            assert got  # the kernel released the dead worker's lock
    finally:
        holder.kill()
        holder.join(5)


def test_slots_are_shared_by_the_threads_of_one_process_too() -> None:
    guard = FloodGuard(FloodLimits(concurrent_kdf=2, kdf_queue_seconds=0.2))
    with guard.kdf_slot() as first, guard.kdf_slot() as second:
        assert first and second
        with guard.kdf_slot() as third:
            assert not third
    with guard.kdf_slot() as again:
        assert again


def test_a_window_full_of_keys_forgets_the_idlest_and_keeps_counting() -> None:
    now = [0.0]
    window = SlidingWindow(1, 60, clock=lambda: now[0], keys=4)
    for key in range(100):  # many more keys than the window holds: its memory does not grow
        now[0] = float(key)
        assert window.hit(key) == 0
    assert window.hit(99) > 0  # the latest keys are still counted
    now[0] += 60
    assert window.hit(99) == 0


def test_gunicorn_master_makes_the_guard_its_workers_use(config: Config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    init_instance(config)
    for name, value in {
        "PELUIT_INSTANCE": config.instance_dir,
        "PELUIT_GNUPG_HOME": config.gnupg_home,
        "PELUIT_KDF_TIME_COST": config.kdf.time_cost,
        "PELUIT_KDF_MEMORY_KIB": config.kdf.memory_kib,
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setattr(flood, "_SHARED", None)
    spec = importlib.util.spec_from_file_location("gunicorn_conf", REPO / "deploy/gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    conf.on_starting(SimpleNamespace(log=SimpleNamespace(warning=lambda *_a: None)))
    shared = flood.shared_guard()
    assert shared is not None
    app = wsgi.make_app()
    assert app.extensions["peluit_flood"] is shared
    app.extensions["peluit_instance"].close()


@pytest.mark.parametrize("limit", [1, 3])
def test_a_window_waits_until_its_oldest_event_ages_out(limit: int) -> None:
    now = [100.0]
    window = SlidingWindow(limit, 60, clock=lambda: now[0])
    for step in range(limit):
        now[0] = 100.0 + step
        assert window.hit("k") == 0
    assert window.hit("k") == 60 - (limit - 1)
    now[0] = 160.0  # the first event is exactly one window old: it no longer counts
    assert window.hit("k") == 0


def test_a_limit_too_large_to_count_exactly_is_refused_clearly() -> None:
    # Each key keeps every event's time in shared memory: an absurd limit would be gigabytes.
    with pytest.raises(ValueError, match="at most"):
        FloodGuard(FloodLimits(source_follow_ups_per_hour=10**6))
    FloodGuard(FloodLimits(source_follow_ups_per_hour=1000))
