"""The federation end to end, on a private Tor network on loopback inside a network namespace.

Once per test session, :func:`scenario` runs ``tests/federation/tor_scenario.py`` in a new
user, network and PID namespace (``unshare``; loopback only, so no packet can leave): 3
directory authorities, 3 relays, an onion-service node for the hub and one client tor per
member, a private PostgreSQL cluster, and three separate installations: the hub (the demo
instance, SQLite), member A (SQLite) and member B (PostgreSQL). They join through the offline
exchange; the hub serves federation_iface behind its federation onion (client authorization for
the members' keys); each member syncs through its own tor's SOCKS port; a report filed with A
and shared with KPK reaches the hub in parts, and KPK's workstation reads it; KPK takes it
over and forwards it to B, whose reply the pelapor reads at A's source onion with the same
codename, and whose workstation reads the pelapor's follow-up; then the hub revokes A.
The scenario reports what it saw as JSON; each test below checks one part of it.

The scenario is PID 1 of its PID namespace: every tor and PostgreSQL die with it, whatever
happens; it also stops each one by its PID and reports any still running.
"""

from __future__ import annotations

import glob
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.onion.testnet import run_scenario, scenario_check
from tests.support import short_tempdir

REPO_ROOT = Path(__file__).resolve().parents[2]
# Bootstrap takes 11-42 s; the whole scenario well under a minute on an idle machine. On a
# loaded one, each unreachable-hub sync may take the member's whole timeout (120 s), and there
# are two of them. Fail well before CI gives up.
SCENARIO_TIMEOUT = 600
# A member whose tor cannot reach the hub's onion: tor says so (ConnectionError), or, on a
# loaded machine, is still trying when the member's timeout ends (ConnectTimeout). Either way
# nothing was sent and the sync is refused.
UNREACHABLE = re.compile(r"the hub cannot be reached \((ConnectionError|ConnectTimeout)\)")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def scenario() -> Iterator[dict[str, Any]]:
    for tool in ("tor", "tor-gencert", "curl", "unshare"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is needed for the federation end-to-end test (tor, curl, util-linux)"
            )
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None and not glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"):
            pytest.fail(f"{tool} is needed for member B's database (apt-get install postgresql)")
    # PostgreSQL's log is kept in <workdir>/pg/ too when it does not run through.
    yield run_scenario(
        "tests.federation.tor_scenario", "federation", short_tempdir("fed-tor-"), SCENARIO_TIMEOUT
    )


_check = scenario_check


def test_the_scenario_ran_through_and_stopped_everything(scenario: dict[str, Any]) -> None:
    assert scenario["ok"], scenario.get("error")
    # 3 authorities, 3 relays, member A's tor, the hub's onion-service tor, member B's tor.
    assert len(scenario["pids"]) == 9
    assert scenario["postgres_pid"]
    assert scenario["still_running"] == []
    print(f"federation over tor: {scenario['elapsed']}s in all; steps at {scenario['timings']}")


def test_three_separate_installations_member_b_on_postgresql(scenario: dict[str, Any]) -> None:
    assert _check(scenario, "databases") == ["sqlite", "sqlite", "postgresql"]
    # Each member joined with the hub's confirmed fingerprint.
    assert _check(scenario, "joined_member-a") == ["hub", "active", True]
    assert _check(scenario, "joined_member-b") == ["hub", "active", True]


def test_the_federation_onion_is_published_for_both_members(scenario: dict[str, Any]) -> None:
    assert _check(scenario, "uploaded") is True
    # And A's instansi's onion (A's source interface), where its pelapor logs in.
    assert _check(scenario, "a_source_uploaded") is True
    name, address, action, clients = scenario["published"]
    assert (name, action, clients) == ("federation", "added", 2)
    assert address.endswith(".onion")
    assert _check(scenario, "tickets_name_the_onion") is True


def test_the_federation_onion_is_unreachable_without_a_client_key(
    scenario: dict[str, Any],
) -> None:
    rc, status, error = _check(scenario, "curl_without_key")
    # curl 97: the SOCKS connection failed; tor's extended SOCKS error 0xF4 (244) is "onion
    # service missing client authorization".
    assert (rc, status) == (97, 0)
    assert error.endswith("(244)"), error
    outcome = _check(scenario, "sync_without_key")
    assert outcome[0] == "refused" and UNREACHABLE.fullmatch(outcome[1]), outcome
    assert _check(scenario, "a_last_error_without_key") == outcome[1]


def test_member_a_syncs_over_tor_and_its_cases_reach_the_hub(scenario: dict[str, Any]) -> None:
    # The instansi and its three cases sent and confirmed; KPK's keys received.
    assert _check(scenario, "a_first_sync") == [4, 1, 0]
    # A second sync (the client key loaded into tor again first) has nothing to send.
    assert _check(scenario, "a_repeat_sync") == [0, 0, 0]
    assert _check(scenario, "a_cases_on_hub") == [True, 3]


def test_member_a_counts_on_the_hubs_dashboard(scenario: dict[str, Any]) -> None:
    # kemendes on KPK's dashboard: three open cases, all overdue for a first response on the
    # 8th of December (received 30 November, due 7 December).
    assert _check(scenario, "dashboard_a") == [3, 3, 3, "Jawa Barat"]


def test_kpks_keys_reach_both_members(scenario: dict[str, Any]) -> None:
    assert _check(scenario, "a_kpk_key_count") >= 1
    assert _check(scenario, "a_kpk_keys") is True
    assert _check(scenario, "b_kpk_keys") is True


def test_a_case_shared_with_kpk_waits_for_its_day_to_be_over(scenario: dict[str, Any]) -> None:
    # Filed with A by a pelapor who shares it with KPK (A's instansi has its own recipient key).
    assert _check(scenario, "a_shared_case_filed") == [True, True]
    # Filed today: A's next sync over tor does not send it, and the hub does not have it. It
    # sends one message: A's instansi (a `tenant` message) with the recipient key it just got.
    assert _check(scenario, "a_shared_case_held_today") == [1, False]


def test_a_shared_case_and_its_parts_cross_tor_to_the_hub(scenario: dict[str, Any]) -> None:
    # Its day over: the case, its form and its evidence file in two parts (larger than one
    # 4 MiB part of the link), confirmed in one sync through A's tor; nothing left staged.
    assert _check(scenario, "evidence_parts") == 2
    assert _check(scenario, "a_shared_sync") == [4, 0, 0]
    assert _check(scenario, "hub_shared_items") == ["file", "form"]
    assert _check(scenario, "hub_staging_empty") is True


def test_kpk_sees_the_shared_case_on_the_hub(scenario: dict[str, Any]) -> None:
    # The mirror case is shared with KPK, with the day it arrived (not the hour of the sync).
    assert _check(scenario, "hub_mirror_case") == [True, "suap_menyuap", True]
    # In KPK's copy, as a local case shared with KPK would be.
    assert _check(scenario, "hub_shared_scope_sees_case") is True
    # And on KPK's dashboard for kemendes: the three earlier cases and the shared one.
    assert _check(scenario, "dashboard_a_after_share") == [
        4, {"gratifikasi": 3, "suap_menyuap": 1},
    ]


def test_kpks_workstation_reads_the_report_filed_with_a(scenario: dict[str, Any]) -> None:
    # KPK's workstation (its own gnupg home with KPK's secret key, not the hub's keyring)
    # decrypts the form A's pelapor wrote...
    apa, same = _check(scenario, "kpk_reads_form")
    assert same is True, apa
    # ...and the evidence file, reassembled from its parts byte for byte (sha256 compared).
    read, filed = _check(scenario, "kpk_reads_evidence")
    assert read == filed


def test_member_b_syncs_and_receives_nothing_of_member_a(scenario: dict[str, Any]) -> None:
    assert _check(scenario, "b_first_sync") == [3, 1, 0]
    assert _check(scenario, "b_cases_on_hub") is True
    # B's database: its own instansi and the KPK mirror, its own cases, nothing of A's.
    assert _check(scenario, "b_tenants") == ["kemenkes", "kpk"]
    assert _check(scenario, "b_cases") == _check(scenario, "b_own_cases")
    assert all(number.startswith("PLT-KEMENKES-") for number in _check(scenario, "b_cases"))


def test_member_bs_instansi_gets_a_recipient_key_and_the_hub_learns_it(
    scenario: dict[str, Any],
) -> None:
    # B's next sync over tor sends its instansi again, now with the key (a `tenant` message).
    assert _check(scenario, "b_key_sync") == [1, 0, 0]
    assert _check(scenario, "b_key_sync_kinds") == {"sent": {"tenant": 1}, "received": {}}
    # So B's instansi is a forwarding destination for KPK on the hub.
    assert _check(scenario, "kpk_may_forward_to_b") is True, "kemenkes is no destination for KPK"


def test_kpk_takes_over_as_case_and_forwards_it_to_b_over_tor(scenario: dict[str, Any]) -> None:
    # KPK took A's shared case over on the hub, replied, and forwarded its case to kemenkes with
    # a package its workstation made: the linked case has a number the hub drew from the
    # range no installation draws from for its own reports.
    prefixed, serial = _check(scenario, "forwarded_number")
    assert prefixed is True, "the forwarded case's number is not kemenkes's"
    assert serial >= 900_000, f"the hub drew {serial}, below the federation's range"
    # B's next sync over tor: the case after its items (the form, the evidence file in its two
    # parts, KPK's reply), nothing sent.
    assert _check(scenario, "b_case_in_sync") == [0, 5, 0]
    assert _check(scenario, "b_case_in_sync_kinds") == {
        "sent": {}, "received": {"case_in": 1, "shared_item": 4},
    }
    assert _check(scenario, "b_holds_forwarded_case") == ["baru", True], (
        "B does not hold the forwarded case as a new case of kemenkes"
    )
    # B's workstation (B's instansi's secret key only) reads what A's pelapor wrote, and the
    # evidence file byte for byte.
    count, apa, same = _check(scenario, "b_reads_form")
    assert (count, same) == (1, True), f"B's workstation read {count} form(s), apa {apa!r}"
    assert _check(scenario, "b_reads_evidence") is True, "B's workstation cannot read the file"


def test_bs_reply_reaches_the_pelapor_at_a_with_the_same_codename(
    scenario: dict[str, Any],
) -> None:
    # B's reply (and its case, now answered) travel to the hub...
    assert _check(scenario, "b_reply_sync") == [2, 0, 0]
    assert _check(scenario, "b_reply_sync_kinds") == {
        "sent": {"case": 1, "shared_item": 1}, "received": {},
    }
    # ...and on to A, with who handles A's case now: KPK's reply on its case, and on B's case
    # the package's copy of it and B's reply.
    assert _check(scenario, "a_handled_sync") == [0, 4, 0]
    assert _check(scenario, "a_handled_sync_kinds") == {
        "sent": {}, "received": {"handled": 1, "shared_item": 3},
    }
    # The pelapor logs in at A's source onion (through A's tor) with the codename they got
    # when filing: their case, the institution that handles it, and both replies.
    status, error = _check(scenario, "pelapor_login_page")
    assert status == 200, f"A's source onion did not answer: {error}"
    assert _check(scenario, "pelapor_reads_at_a") == {
        "status": 200, "case": True, "b_reply": True, "kpk_reply": True, "handler": True,
    }


def test_the_pelapors_follow_up_at_a_reaches_bs_workstation(scenario: dict[str, Any]) -> None:
    # Sent with the form on the pelapor's page at A's onion: stored, back to the page.
    assert _check(scenario, "pelapor_follow_up") == [302, ""]
    # Stored at A (one item) encrypted to B's instansi's keys only: A's workstation cannot
    # read it.
    assert _check(scenario, "a_reads_follow_up") == [False]
    # A sends it (and its own case, now diteruskan); the hub passes it on to B.
    assert _check(scenario, "a_follow_up_sync") == [2, 0, 0]
    assert _check(scenario, "a_follow_up_sync_kinds") == {
        "sent": {"case": 1, "shared_item": 1}, "received": {},
    }
    assert _check(scenario, "b_follow_up_sync") == [0, 1, 0]
    assert _check(scenario, "b_follow_up_sync_kinds") == {
        "sent": {}, "received": {"shared_item": 1},
    }
    # Encrypted to B's instansi's key: B's workstation reads the text.
    assert _check(scenario, "b_reads_follow_up") is True, "B's workstation cannot read it"


def test_b_receives_nothing_of_as_other_cases(scenario: dict[str, Any]) -> None:
    # B's own cases, the one KPK forwarded to it and its mirror of KPK's case: nothing else.
    held, expected, of_a = _check(scenario, "b_cases_after_handling")
    assert held == expected, f"B holds {held}"
    assert of_a == [], f"B holds A's cases {of_a}"


def test_a_revoked_member_is_refused_at_once(scenario: dict[str, Any]) -> None:
    in_effect, note = _check(scenario, "revocation")
    assert in_effect is True
    assert note == "federation onion replaced, 1 member(s)"
    # A's very next sync, through its tor with its old key, fails (no retry): tor cannot
    # reach the onion any more (seen every time), or, had A's old circuit outlived the
    # revocation, the endpoint refuses it.
    outcome = _check(scenario, "a_after_revocation")
    assert outcome[0] == "refused", outcome
    assert UNREACHABLE.fullmatch(outcome[1]) or outcome[1] == "the hub refused the request: revoked"
    rc, status, error = _check(scenario, "curl_a_after_revocation")
    # 0xF5 (245): "onion service wrong client authorization".
    assert (rc, status) == (97, 0)
    assert error.endswith("(245)"), error
    # And the endpoint itself refuses A's signature, whatever tor does.
    assert _check(scenario, "endpoint_refuses_a") == [403, {"error": "revoked"}]
    assert _check(scenario, "hub_refusals") == ["revoked"]
    # A's case added just before the revocation never reached the hub (its three earlier
    # cases and the shared one did).
    assert _check(scenario, "a_cases_on_hub_after_revocation") == 4


def test_member_b_still_syncs_after_a_is_revoked(scenario: dict[str, Any]) -> None:
    sent, pending, arrived = _check(scenario, "b_after_revocation")
    assert (sent, pending, arrived) == (1, 0, True)
