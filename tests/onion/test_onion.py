"""wbs.onion against a real tor with ``DisableNetwork 1``: ADD_ONION, keys, client auth, CLI.

The tor is real (no mock); with the network disabled it answers ADD_ONION at once and
publishes nothing, which is all these tests need. Reachability over a real Tor network is
tested in test_e2e_testnet.py.
"""

from __future__ import annotations

import base64
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stem.control
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import DemoInstance
from tests.onion.tornet import TorProcess, offline_tor
from tests.support import CHEAP_KDF, short_tempdir
from wbs import onion
from wbs.accounts import AuthSettings, create_investigator, deactivate
from wbs.domain import Role, TenantKind
from wbs.instance import Instance
from wbs.models import Investigator, Tenant
from wbs.tenants import create_tenant, get_tenant

# What `peluit onion status` says of an onion this offline tor accepted: never "published".
WAITING = r"NOT published: waiting for tor \(bootstrap 0%\)"
AUTH_PRIVATE = re.compile(r"([a-z2-7]{56}):descriptor:x25519:([A-Z2-7]{52})")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _addresses(inst: Instance) -> dict[str, str | None]:
    with inst.sessions() as session:
        return {t.slug: t.onion_address for t in session.scalars(sa.select(Tenant))}


def _investigator(inst: Instance, username: str, tenant: str = "kpk") -> Investigator:
    with inst.sessions() as session:
        account, _ = create_investigator(
            session,
            get_tenant(session, tenant),
            username,
            username.title(),
            Role.VERIFIKATOR if tenant != "kpk" else Role.PEMANTAU_KPK,
            settings=AuthSettings.from_kdf(CHEAP_KDF),
        )
        session.commit()
        return account


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


# --- keys and addresses -------------------------------------------------------------------------


def test_local_key_gives_the_address_tor_derives(controller: stem.control.Controller) -> None:
    key = onion.ServiceKey.generate()
    response = controller.msg(f"ADD_ONION {key.blob} Flags=DiscardPK Port=80,127.0.0.1:9")
    assert response.is_ok(), str(response)
    assert f"ServiceID={key.address}" in str(response)


def test_publish_all_gives_each_tenant_its_own_onion(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    inst = demo.instance
    results = onion.publish_all(controller, inst, 8080, 8081)

    by_name = {r.name: r for r in results}
    assert set(by_name) == {"tenant:kpk", "tenant:pemprov-sumsel", "investigator"}
    addresses = _addresses(inst)
    for slug in ("kpk", "pemprov-sumsel"):
        assert by_name[f"tenant:{slug}"].action == "added"
        assert addresses[slug] == by_name[f"tenant:{slug}"].address
        assert re.fullmatch(r"[a-z2-7]{56}\.onion", addresses[slug] or "")
    assert addresses["kpk"] != addresses["pemprov-sumsel"]
    live = onion.published_ids(controller)
    assert {a.removesuffix(".onion") for a in addresses.values() if a} <= live
    # No client key yet: the investigator onion is not published without authorization.
    assert by_name["investigator"].action == "skipped"
    assert onion.investigator_key(inst).address not in live


def test_keys_are_private_files(demo: DemoInstance, controller: stem.control.Controller) -> None:
    inst = demo.instance
    onion.publish_all(controller, inst, 8080, 8081)
    root = onion.onion_dir(inst)
    assert _mode(root) == 0o700
    assert _mode(root / "tenants") == 0o700
    files = [*sorted((root / "tenants").iterdir()), root / "investigator.key"]
    assert [p.name for p in files] == ["kpk.key", "pemprov-sumsel.key", "investigator.key"]
    for path in files:
        assert _mode(path) == 0o600
        assert path.read_text().startswith("ED25519-V3:")


def test_tor_restart_gives_the_same_addresses(demo: DemoInstance) -> None:
    inst = demo.instance
    root = short_tempdir("tor-r-")
    try:
        seen = []
        for _ in range(2):  # two separate tor processes, the first one stopped
            with offline_tor(root) as proc, onion.connect(f"127.0.0.1:{proc.control_port}") as c:
                results = onion.publish_all(c, inst, 8080, 8081)
                assert [r.action for r in results if r.name.startswith("tenant:")] == [
                    "added", "added"
                ]
                seen.append(sorted(onion.published_ids(c)))
        assert seen[0] == seen[1]
        assert len(seen[0]) == 2
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_publishing_again_keeps_or_replaces(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    inst = demo.instance
    first = onion.publish_all(controller, inst, 8080, 8081)
    again = onion.publish_all(controller, inst, 8080, 8081)
    replaced = onion.publish_all(controller, inst, 8080, 8081, replace=True)
    tenants = [r for r in first if r.name.startswith("tenant:")]
    assert {r.action for r in again if r.name.startswith("tenant:")} == {"kept"}
    assert {r.action for r in replaced if r.name.startswith("tenant:")} == {"replaced"}
    assert [r.address for r in tenants] == [
        r.address for r in replaced if r.name.startswith("tenant:")
    ]


def test_a_new_tenant_is_published_without_restart(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    inst = demo.instance
    onion.publish_all(controller, inst, 8080, 8081)
    with inst.sessions() as session:
        create_tenant(session, slug="pemkot-palembang", name="Pemkot Palembang",
                      kind=TenantKind.PEMERINTAH_KOTA)
        session.commit()
    result = onion.publish_tenant(controller, inst, "pemkot-palembang", 8080)
    assert result.action == "added"
    assert _addresses(inst)["pemkot-palembang"] == result.address
    assert result.address.removesuffix(".onion") in onion.published_ids(controller)


def test_pow_defences_are_on_where_tor_has_them(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    version = controller.get_version()
    results = onion.publish_all(controller, demo.instance, 8080, 8081)
    expected = (version.major, version.minor, version.micro) >= (0, 4, 8)
    assert {r.pow_defenses for r in results if r.name.startswith("tenant:")} == {expected}


def test_a_key_file_readable_by_others_is_refused(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    inst = demo.instance
    onion.publish_all(controller, inst, 8080, 8081)
    path = onion.tenant_key_path(inst, "kpk")
    path.chmod(0o644)
    with pytest.raises(onion.OnionError, match="chmod 600"):
        onion.publish_tenant(controller, inst, "kpk", 8080, replace=True)


def test_a_damaged_key_file_is_refused(demo: DemoInstance) -> None:
    inst = demo.instance
    path = onion.tenant_key_path(inst, "kpk")
    onion.tenant_key(inst, "kpk")
    path.write_text("ED25519-V3:nonsense\nx.onion\n")
    with pytest.raises((onion.OnionError, ValueError)):
        onion.tenant_key(inst, "kpk")


# --- client authorization -----------------------------------------------------------------------


def test_each_investigator_gets_an_own_key_pair(demo: DemoInstance) -> None:
    inst = demo.instance
    siti = onion.generate_client_key(inst, _investigator(inst, "siti"))
    budi = onion.generate_client_key(inst, _investigator(inst, "budi", "pemprov-sumsel"))
    service = onion.investigator_key(inst)

    for made in (siti, budi):
        match = AUTH_PRIVATE.fullmatch(made.auth_private)
        assert match, made.auth_private
        assert match.group(1) == service.address
        assert made.onion == service.hostname
        # The public key stored is the one of the private key handed over.
        private = X25519PrivateKey.from_private_bytes(_b32decode(match.group(2)))
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        assert _b32decode(made.public_key) == public
        path = onion.onion_dir(inst) / "clients" / f"{made.username}.pub"
        assert _mode(path) == 0o600
        assert path.read_text().strip() == made.public_key
        # The private half is stored nowhere in the instance.
        secret = match.group(2)
        for item in inst.config.instance_dir.rglob("*"):
            if item.is_file() and item.stat().st_size < 1_000_000:
                assert secret.encode() not in item.read_bytes()
    assert siti.public_key != budi.public_key
    assert onion.client_public_keys(inst) == {"budi": budi.public_key, "siti": siti.public_key}


def test_a_new_key_replaces_the_old_one(demo: DemoInstance) -> None:
    inst = demo.instance
    account = _investigator(inst, "siti")
    first = onion.generate_client_key(inst, account)
    second = onion.generate_client_key(inst, account)
    assert first.public_key != second.public_key
    assert onion.client_public_keys(inst) == {"siti": second.public_key}


def test_a_deactivated_account_gets_no_key(demo: DemoInstance) -> None:
    inst = demo.instance
    account = _investigator(inst, "siti")
    with inst.sessions() as session:
        found = session.get(Investigator, account.id)
        assert found is not None
        deactivate(session, found)
        session.commit()
        with pytest.raises(onion.OnionError, match="deactivated"):
            onion.generate_client_key(inst, found)


def test_investigator_onion_with_client_auth_and_revocation(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    inst = demo.instance
    onion.generate_client_key(inst, _investigator(inst, "siti"))
    onion.generate_client_key(inst, _investigator(inst, "budi", "pemprov-sumsel"))
    address = onion.investigator_key(inst).address

    added = onion.publish_investigator(controller, inst, 8081)
    assert (added.action, added.clients) == ("added", 2)
    assert address in onion.published_ids(controller)

    assert onion.revoke_client_key(inst, "siti") is True
    assert onion.revoke_client_key(inst, "siti") is False
    assert list(onion.client_public_keys(inst)) == ["budi"]
    again = onion.publish_investigator(controller, inst, 8081, replace=True)
    assert (again.action, again.clients, again.address) == ("replaced", 1, added.address)

    onion.revoke_client_key(inst, "budi")
    last = onion.publish_investigator(controller, inst, 8081, replace=True)
    assert (last.action, last.clients) == ("removed", 0)
    assert address not in onion.published_ids(controller)


def _deactivate(inst: Instance, username: str) -> None:
    with inst.sessions() as session:
        found = session.scalar(sa.select(Investigator).where(Investigator.username == username))
        assert found is not None
        deactivate(session, found)
        session.commit()


def test_deactivation_withdraws_the_client_key_from_tor_at_once(
    demo: DemoInstance, controller: stem.control.Controller, tor_offline: TorProcess
) -> None:
    inst = demo.instance
    onion.generate_client_key(inst, _investigator(inst, "siti"))
    onion.generate_client_key(inst, _investigator(inst, "budi", "pemprov-sumsel"))
    assert onion.publish_investigator(controller, inst, 8081).clients == 2

    _deactivate(inst, "siti")
    revocation = onion.revoke_client_access(
        inst, "siti", f"127.0.0.1:{tor_offline.control_port}"
    )
    assert revocation.in_effect, revocation.note
    assert "replaced, 1 client(s)" in revocation.note
    assert list(onion.client_public_keys(inst)) == ["budi"]
    # What tor now holds is what publishing finds: nothing left to replace.
    assert onion.publish_investigator(controller, inst, 8081).action == "kept"


def test_a_deactivated_accounts_leftover_key_is_never_published(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    inst = demo.instance
    onion.generate_client_key(inst, _investigator(inst, "siti"))
    onion.generate_client_key(inst, _investigator(inst, "budi", "pemprov-sumsel"))
    assert onion.publish_investigator(controller, inst, 8081).clients == 2
    # Deactivated while tor was unreachable, or a key file back from a restored backup: the
    # periodic publish (without --replace) still takes the key out of tor.
    _deactivate(inst, "siti")
    assert "siti" in onion.client_public_keys(inst)
    again = onion.publish_investigator(controller, inst, 8081)
    assert (again.action, again.clients) == ("replaced", 1)
    _deactivate(inst, "budi")
    last = onion.publish_investigator(controller, inst, 8081)
    assert (last.action, last.clients) == ("removed", 0)
    assert onion.investigator_key(inst).address not in onion.published_ids(controller)


def test_deactivation_without_tor_removes_the_stored_key(demo: DemoInstance) -> None:
    inst = demo.instance
    onion.generate_client_key(inst, _investigator(inst, "siti"))
    _deactivate(inst, "siti")
    revocation = onion.revoke_client_access(inst, "siti", "127.0.0.1:1")
    assert onion.client_public_keys(inst) == {}
    assert not revocation.in_effect and "next publish" in revocation.note


def test_status_lists_what_tor_serves(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    inst = demo.instance
    before = {s.name: s for s in onion.status(controller, inst)}
    assert before["tenant:kpk"].address is None and not before["tenant:kpk"].published

    onion.generate_client_key(inst, _investigator(inst, "siti"))
    onion.publish_all(controller, inst, 8080, 8081)
    stranger = controller.msg("ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=80,127.0.0.1:9")
    assert stranger.is_ok()

    after = onion.status(controller, inst)
    names = [s.name for s in after]
    assert names == ["tenant:kpk", "tenant:pemprov-sumsel", "investigator", "other"]
    assert all(s.accepted for s in after)
    assert after[0].address == _addresses(inst)["kpk"]
    assert after[2].clients == 1
    # Accepted is not published: this tor has its network disabled and uploads nothing.
    assert onion.bootstrap_progress(controller) == 0
    confirmed = onion.status(controller, inst, confirm_seconds=5)
    assert [s.accepted for s in confirmed] == [True] * 4
    assert not any(s.published for s in confirmed)
    assert onion.publication_state(False, True, 0) == (
        "NOT published: waiting for tor (bootstrap 0%)"
    )


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(demo: DemoInstance, tor_offline: TorProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    config = demo.instance.config
    monkeypatch.setenv("TOR_CONTROL", f"127.0.0.1:{tor_offline.control_port}")
    monkeypatch.setenv("PELUIT_GNUPG_HOME", str(config.gnupg_home))
    monkeypatch.setenv("PELUIT_KDF_MEMORY_KIB", str(CHEAP_KDF.memory_kib))
    monkeypatch.setenv("PELUIT_KDF_TIME_COST", str(CHEAP_KDF.time_cost))

    def invoke(*args: str, ok: bool = True) -> Any:
        from peluit.cli import main

        result = CliRunner().invoke(main, ["--instance", str(config.instance_dir), *args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    yield invoke
    with onion.connect(f"127.0.0.1:{tor_offline.control_port}") as ctl:
        for service_id in onion.published_ids(ctl):
            ctl.remove_ephemeral_hidden_service(service_id)


def test_cli_publish_status_and_client_keys(cli: Any, demo: DemoInstance) -> None:
    inst = demo.instance
    _investigator(inst, "siti")
    _investigator(inst, "budi", "pemprov-sumsel")

    published = cli("onion", "publish").output
    assert re.search(r"^tenant:kpk\t[a-z2-7]{56}\.onion\tadded$", published, re.M), published
    assert re.search(r"^investigator\t\S+\tskipped$", published, re.M), published

    added = cli("onion", "client-key", "add", "siti").output
    lines = AUTH_PRIVATE.findall(added)
    assert len(lines) == 1, added
    assert "investigator onion" in added and "added, 1 client(s)" in added
    cli("onion", "client-key", "add", "budi")
    assert cli("onion", "client-key", "list").output.split() == ["budi", "siti"]

    status = cli("onion", "status").output
    assert re.search(
        r"^investigator\t\S+\.onion\t" + WAITING + r"\t2 client key\(s\)$", status, re.M
    )
    assert re.search(r"^tenant:pemprov-sumsel\t\S+\.onion\t" + WAITING + r"$", status, re.M), status

    revoked = cli("onion", "client-key", "revoke", "siti").output
    assert "replaced, 1 client(s)" in revoked
    assert cli("onion", "client-key", "list").output.split() == ["budi"]
    missing = cli("onion", "client-key", "revoke", "siti", ok=False)
    assert missing.exit_code == 1 and "has no client key" in missing.output
    unknown = cli("onion", "client-key", "add", "nobody", ok=False)
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output


def test_cli_deactivation_takes_the_account_off_the_investigator_onion(
    cli: Any, demo: DemoInstance
) -> None:
    inst = demo.instance
    _investigator(inst, "siti")
    _investigator(inst, "budi", "pemprov-sumsel")
    cli("onion", "client-key", "add", "siti")
    cli("onion", "client-key", "add", "budi")
    deactivated = cli("investigator", "deactivate", "siti").output
    assert "replaced, 1 client(s)" in deactivated, deactivated
    assert cli("onion", "client-key", "list").output.split() == ["budi"]
    status = cli("onion", "status").output
    assert re.search(
        r"^investigator\t\S+\.onion\t" + WAITING + r"\t1 client key\(s\)$", status, re.M
    )


def test_cli_says_when_tor_is_unreachable(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOR_CONTROL", "127.0.0.1:1")
    result = cli("onion", "status", ok=False)
    assert result.exit_code == 1
    assert "cannot reach tor's control port at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def test_cli_tenant_add_puts_the_new_tenant_online(cli: Any, demo: DemoInstance) -> None:
    added = cli("tenant", "add", "pemkot-palembang", "--name", "Pemerintah Kota Palembang",
                "--kind", "pemerintah_kota").output
    found = re.search(r"onion of pemkot-palembang: http://([a-z2-7]{56}\.onion)/", added)
    assert found, added
    with demo.instance.sessions() as session:
        tenant = session.scalar(sa.select(Tenant).where(Tenant.slug == "pemkot-palembang"))
        assert tenant is not None and tenant.onion_address == found.group(1)
    assert re.search(r"^tenant:pemkot-palembang\t\S+\.onion\t" + WAITING + r"$",
                     cli("onion", "status").output, re.M)


def test_a_members_hub_client_key_can_be_loaded_before_every_exchange(
    demo: DemoInstance, controller: stem.control.Controller
) -> None:
    # `peluit federation sync` gives tor the key before each exchange: the second time tor
    # answers "251 Client for onion existed and replaced", which is success too.
    hub_key = onion.ServiceKey.generate()
    _public, private = onion.new_client_auth(hub_key)
    onion.store_hub_client_auth(demo.instance, onion.parse_client_auth(private))
    first = onion.load_hub_client_auth(controller, demo.instance)
    assert onion.load_hub_client_auth(controller, demo.instance) == first == hub_key.hostname
    listed = controller.msg(f"ONION_CLIENT_AUTH_VIEW {hub_key.address}")
    assert hub_key.address in str(listed)
