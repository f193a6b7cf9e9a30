"""Onion services end to end, on a private Tor network on loopback inside a network namespace.

Once per test session, :func:`scenario` runs ``tests/onion/e2e_scenario.py`` in a new user,
network and PID namespace (``unshare``; loopback only, so no packet can leave): 3 directory
authorities, 3 relays, a client and an onion-service node, a real demo instance serving its
source interface, and the onions published by wbs.onion. A reporter (curl through the client's
SOCKS port) reads two tenants' drop boxes on their own onions and sends a report with a file;
investigators meet the client-authorized onion without a key, with one, with a revoked one;
the service's tor restarts and the addresses stay. The scenario reports what it saw as JSON;
each test below checks one part of it.

The scenario is PID 1 of its PID namespace: every tor it started dies with it, whatever
happens; it also stops each one by its PID and reports any still running.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.onion.testnet import run_scenario, scenario_check
from tests.support import short_tempdir

REPO_ROOT = Path(__file__).resolve().parents[2]
# Bootstrap takes 11-42 s; the whole scenario about 1.5 minutes. Fail well before CI gives up.
SCENARIO_TIMEOUT = 360

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def scenario() -> Iterator[dict[str, Any]]:
    for tool in ("tor", "tor-gencert", "curl", "unshare"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed for the onion end-to-end tests (tor, curl, util-linux)")
    yield run_scenario(
        "tests.onion.e2e_scenario", "onion", short_tempdir("onion-e2e-"), SCENARIO_TIMEOUT
    )


_check = scenario_check


def test_the_scenario_ran_through_and_stopped_every_tor(scenario: dict[str, Any]) -> None:
    assert scenario["ok"], scenario.get("error")
    assert len(scenario["pids"]) == 8  # 3 authorities, 3 relays, client, service
    assert scenario["still_running"] == []
    timings = scenario["timings"]
    print(f"onion e2e: {scenario['elapsed']}s in all; steps at {timings}")


def test_each_tenant_is_served_on_its_own_onion(scenario: dict[str, Any]) -> None:
    status, own_name, other_name, error = _check(scenario, "kpk_landing")
    assert (status, own_name, other_name) == (200, True, False), error
    assert _check(scenario, "sumsel_landing") == [200, True]
    published = {name: (address, action) for name, address, action, _ in scenario["published"]}
    assert published["tenant:kpk"][0] != published["tenant:pemprov-sumsel"][0]
    assert {action for _, action in published.values()} == {"added"}


def test_pow_defences_were_accepted(scenario: dict[str, Any]) -> None:
    _check(scenario, "kpk_landing")
    assert {pow_on for *_, pow_on in scenario["published"]} == {True}


def test_a_reporter_sends_a_report_with_a_file_over_the_onion(scenario: dict[str, Any]) -> None:
    registered, sent, registration = _check(scenario, "report")
    assert registered == 302  # codename confirmed, on to the form
    assert sent == 200  # the receipt, after the redirect
    assert registration and registration.startswith("PLT-PEMPROV-SUMSEL-"), scenario.get(
        "receipt_excerpt"
    )
    # Stored as two encrypted submissions: the form's answers and the file.
    assert _check(scenario, "report_stored") == 2


def test_investigator_onion_refuses_a_client_without_key(scenario: dict[str, Any]) -> None:
    rc, status, error = _check(scenario, "staff_without_key")
    # curl 97: the SOCKS connection failed; tor's extended SOCKS error 0xF4 (244) is "onion
    # service missing client authorization".
    assert (rc, status) == (97, 0)
    assert error.endswith("(244)"), error


def test_investigator_onion_serves_a_client_with_its_key(scenario: dict[str, Any]) -> None:
    status, page, error = _check(scenario, "staff_with_key")
    assert (status, page) == (200, True), error


def test_a_revoked_key_stops_working_and_the_others_keep_working(
    scenario: dict[str, Any],
) -> None:
    assert _check(scenario, "republished") == ["replaced", 1, True]
    rc, status, error = _check(scenario, "staff_revoked_key")
    # 0xF5 (245): "onion service wrong client authorization".
    assert (rc, status) == (97, 0)
    assert error.endswith("(245)"), error
    assert _check(scenario, "staff_other_key") == [200, True]


def test_addresses_survive_a_restart_of_the_service_tor(scenario: dict[str, Any]) -> None:
    assert _check(scenario, "same_addresses") is True
    status, page, error = _check(scenario, "kpk_after_restart")
    assert (status, page) == (200, True), error
    actions = {action for _, _, action in scenario["republished_after_restart"]}
    assert actions == {"added"}  # tor had forgotten them; same keys, same addresses


def test_an_onion_is_published_only_once_its_descriptor_is_uploaded(
    scenario: dict[str, Any]
) -> None:
    # Just after ADD_ONION, before the network bootstrapped: accepted, not published.
    progress, confirmed_early = _check(scenario, "accepted_is_not_published")
    assert confirmed_early == [] or progress == 100
    names = ["investigator", "tenant:kpk", "tenant:pemprov-sumsel"]
    # HS_DESC UPLOADED for every onion, heard on the publishing connection.
    assert _check(scenario, "uploaded") == names
    # And a later one-shot status (HSFETCH, RECEIVED) calls all of them published.
    assert _check(scenario, "status_published") == names


def test_doctor_finds_a_healthy_tor_healthy(scenario: dict[str, Any]) -> None:
    checks = _check(scenario, "doctor")
    assert checks["tor"][0] == "ok", checks["tor"]
    assert checks["tor"][1].startswith("bootstrapped 100%, tor 0.4."), checks["tor"]
    assert checks["onions"][0] == "ok", checks["onions"]
    assert checks["onions"][1].startswith("3 published")
    assert checks["clock"][0] == "ok", checks["clock"]
