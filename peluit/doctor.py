"""``peluit doctor``: is this server doing its job? One line per check, one verdict, an exit code
for monitoring.

Checks, each ``ok``, ``warn``, ``fail`` or ``unknown`` (could not be checked here; it does not
change the verdict, and says why):

* file modes: the instance folder not readable by others, the secrets 0600 (folder 0700), the
  onion keys and the signing key readable by their owner only;
* migrations: the database at the revision this code needs (the servers refuse to start
  otherwise);
* disk: the store's free space above ``disk_floor_bytes`` (intake closes below it; warn below
  twice the floor);
* recipient keys: every tenant has a current key that will still encrypt ``--key-days`` from
  now (fail: a tenant without a usable key cannot receive reports);
* tor: reachable on its control port and bootstrapped to 100 %; warn when it is older than
  0.4.8, which has no proof-of-work defences for the onions (deploy/install.sh upgrades it);
* onions: every onion's descriptor is on the directories, which tor reports in HS_DESC events
  (:func:`wbs.onion.confirm_published`). An onion tor merely accepted is not published;
* clock: within the validity of tor's consensus (TOTP codes and tor both need a right clock);
  unknown without a consensus;
* services: the systemd units active, where systemd runs; unknown elsewhere;
* federation (only where this installation is a hub with members or a member of a hub): every
  active link synced within a day (fail otherwise), a member's last error and the day's
  refusals (warn).

Exit status: 0 all ok, 1 a warning (and no failure), 2 a failure. ``deploy/systemd/
peluit-doctor.timer`` runs it every 15 minutes; the journal keeps the lines and the verdict.
"""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import click
import sqlalchemy as sa
import stem
import stem.version

from crypto.errors import KeyRefused
from peluit.clikit import config_of
from wbs import db, tallies
from wbs import onion as onions
from wbs.config import SECRET_NAMES, SECRETS_DIR, Config
from wbs.federation.status import link_lines
from wbs.instance import Instance
from wbs.models import FederationRefusal, RecipientKey, Tenant

OK, WARN, FAIL, UNKNOWN = "ok", "warn", "fail", "unknown"
EXIT_CODES = {OK: 0, WARN: 1, FAIL: 2}
# The units a production server runs (deploy/systemd); tor is Debian's tor@default.
SERVICES = ("peluit-source.service", "peluit-journalist.service", "tor@default.service")
# How far before tor's consensus became valid the clock may be (authorities' clocks differ too).
CLOCK_SLACK = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # OK, WARN, FAIL or UNKNOWN
    detail: str

    def line(self) -> str:
        return f"{self.level:<7} {self.name}: {self.detail}"


def verdict(checks: Iterable[Check]) -> tuple[int, str]:
    """The exit status and the one-line verdict for monitoring."""
    levels = [c.level for c in checks]
    worst = FAIL if FAIL in levels else WARN if WARN in levels else OK
    counts = ", ".join(f"{levels.count(level)} {level}" for level in (FAIL, WARN, OK, UNKNOWN))
    return EXIT_CODES[worst], f"peluit doctor: {worst.upper()} ({counts})"


# --- the instance's files -----------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check_file_modes(config: Config) -> Check:
    problems: list[str] = []
    instance_dir = config.instance_dir
    if _mode(instance_dir) & 0o007:
        problems.append(f"{instance_dir} is {_mode(instance_dir):04o} (others may read it)")
    secrets = instance_dir / SECRETS_DIR
    if secrets.is_dir() and _mode(secrets) & 0o077:
        problems.append(f"{secrets} is {_mode(secrets):04o}, not 0700")
    for name in SECRET_NAMES:
        path = secrets / name
        if not path.exists():
            problems.append(f"{path} is missing")
        elif _mode(path) != 0o600:
            problems.append(f"{path} is {_mode(path):04o}, not 0600")
    # The onion keys, and the signing key's secret half (gpg's public ring may be 0644 inside
    # its 0700 home).
    signing = instance_dir / "signing"
    if signing.is_dir() and _mode(signing) & 0o077:
        problems.append(f"{signing} is {_mode(signing):04o}, not 0700")
    for folder in (instance_dir / onions.ONION_DIR, signing / "private-keys-v1.d"):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink() and _mode(path) & 0o077:
                    problems.append(f"{path} is {_mode(path):04o} (a key: owner only)")
    if problems:
        return Check("file modes", FAIL, "; ".join(problems))
    return Check("file modes", OK, "instance folder private, secrets and keys 0600")


def check_migrations(config: Config) -> Check:
    engine = db.make_engine(config.database_url)
    try:
        current = db.current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        return Check("migrations", FAIL, f"the database cannot be read: {type(exc).__name__}")
    finally:
        engine.dispose()
    head = db.head_revision()
    if current == head:
        return Check("migrations", OK, f"database at {head} (head)")
    return Check(
        "migrations", FAIL, f"database at {current or 'nothing'}, code needs {head}: "
        "run 'peluit db upgrade'"
    )


def check_disk(config: Config) -> Check:
    free = shutil.disk_usage(config.store_dir if config.store_dir.exists()
                             else config.instance_dir).free
    floor = config.disk_floor_bytes
    detail = f"{_size(free)} free in the store, floor {_size(floor)}"
    if free < floor:
        return Check("disk", FAIL, f"{detail}: intake is closed")
    if free < 2 * floor:
        return Check("disk", WARN, f"{detail}: less than twice the floor")
    return Check("disk", OK, detail)


def _size(count: int) -> str:
    return f"{count / 1024**3:.1f} GiB"


def check_recipient_keys(inst: Instance, days: int, now: dt.datetime) -> Check:
    failures: list[str] = []
    warnings: list[str] = []
    later = now + dt.timedelta(days=days)
    with inst.sessions() as session:
        # A hub's mirrors of its members' instansi take no reports here, so hold no keys;
        # a member's copy of KPK does hold the keys its reports to KPK are encrypted to.
        tenants = list(session.scalars(
            sa.select(Tenant)
            .where(sa.or_(Tenant.federation_peer_id.is_(None), Tenant.is_hub))
            .order_by(Tenant.slug)
        ))
        current = {
            tenant.slug: list(session.scalars(
                sa.select(RecipientKey).where(
                    RecipientKey.tenant_id == tenant.id, RecipientKey.revoked_at.is_(None)
                )
            ))
            for tenant in tenants
        }
    for slug, keys in current.items():
        usable = 0
        for key in keys:
            try:
                inst.keyring.inspect_public_key(key.public_key, at=now)
            except KeyRefused as exc:
                failures.append(f"{slug}: key {key.fingerprint} no longer encrypts ({exc})")
                continue
            usable += 1
            try:
                inst.keyring.inspect_public_key(key.public_key, at=later)
            except KeyRefused:
                warnings.append(f"{slug}: key {key.fingerprint} expires within {days} days")
        if not usable:
            failures.append(f"{slug}: no usable recipient key, intake is closed")
    if failures:
        return Check("recipient keys", FAIL, "; ".join(failures + warnings))
    if warnings:
        return Check("recipient keys", WARN, "; ".join(warnings))
    return Check(
        "recipient keys", OK, f"{len(current)} tenant(s), keys valid beyond {days} days"
    )


# --- tor ----------------------------------------------------------------------------------------


def check_tor(spec: str, inst: Instance | None, wait: float, now: dt.datetime) -> list[Check]:
    """tor bootstrapped, each onion published, the clock within tor's consensus."""
    try:
        with onions.connect(spec) as controller:
            progress = onions.bootstrap_progress(controller)
            tor = tor_state(progress, controller.get_version(None))
            clock = check_clock(controller, now)
            published = _check_onions(controller, inst, wait, progress)
    except onions.OnionError as exc:
        return [
            Check("tor", FAIL, f"not running or unreachable: {exc}"),
            Check("onions", FAIL, "tor is not running: no onion is published"),
            Check("clock", UNKNOWN, "no tor consensus to compare with"),
        ]
    except (stem.ControllerError, stem.SocketClosed, OSError) as exc:
        return [
            Check("tor", FAIL, f"the control connection failed: {type(exc).__name__}"),
            Check("onions", FAIL, "tor did not answer: publication unknown"),
            Check("clock", UNKNOWN, "no tor consensus to compare with"),
        ]
    return [tor, published, clock]


def tor_state(progress: int, version: stem.version.Version | None) -> Check:
    """The tor check: bootstrapped, and new enough to defend the onions against floods."""
    detail = f"bootstrapped {progress}%, tor {version or 'of unknown version'}"
    if progress != 100:
        return Check("tor", FAIL, detail)
    if version is not None and version < onions.POW_TOR_VERSION:
        # It serves, so a warning: but a flood of requests can take the onions down.
        return Check("tor", WARN, f"{detail} has no proof-of-work defences for the onions "
                     f"({onions.POW_TOR_VERSION} and later have them; the installer, run again, "
                     "upgrades tor)")
    return Check("tor", OK, detail)


def _check_onions(
    controller: stem.control.Controller, inst: Instance | None, wait: float, progress: int
) -> Check:
    if inst is None:
        return Check("onions", UNKNOWN, "the instance cannot be opened (see above)")
    failures: list[str] = []
    warnings: list[str] = []
    published: list[str] = []
    for item in onions.status(controller, inst, confirm_seconds=wait):
        if item.name == "other":
            continue
        if item.address is None:
            failures.append(f"{item.name} has no key yet: run 'peluit onion publish'")
        elif item.published:
            published.append(item.name)
        elif item.name == onions.INVESTIGATOR_SERVICE and not item.clients:
            warnings.append("investigator onion not published: no client key yet")
        else:
            state = onions.publication_state(False, item.accepted, progress)
            failures.append(f"{item.name} {state}")
    if failures:
        return Check("onions", FAIL, "; ".join(failures + warnings))
    if warnings:
        return Check("onions", WARN, "; ".join([*warnings, f"{len(published)} published"]))
    return Check("onions", OK, f"{len(published)} published (descriptor on the directories)")


def _consensus_time(controller: stem.control.Controller, key: str) -> dt.datetime | None:
    try:
        text = controller.get_info(key)
    except (stem.ControllerError, stem.SocketClosed):
        return None
    try:
        return dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def check_clock(controller: stem.control.Controller, now: dt.datetime) -> Check:
    """Is ``now`` inside the validity of tor's consensus? The consensus' times are set by the
    directory authorities, so this catches a clock off by more than minutes, without any
    network call of our own (NTP is the system's job: see deploy/README.md)."""
    valid_after = _consensus_time(controller, "consensus/valid-after")
    valid_until = _consensus_time(controller, "consensus/valid-until")
    if valid_after is None or valid_until is None:
        return Check("clock", UNKNOWN, "tor has no consensus yet: cannot compare")
    if now < valid_after - CLOCK_SLACK:
        behind = valid_after - now
        return Check("clock", FAIL, f"at least {behind} behind tor's consensus")
    if now > valid_until:
        ahead = now - valid_until
        return Check("clock", FAIL, f"{ahead} past the end of tor's consensus (ahead, or stale)")
    return Check("clock", OK, f"within tor's consensus ({valid_after:%H:%M}-{valid_until:%H:%M}"
                 " UTC)")


# --- services -----------------------------------------------------------------------------------


def check_services(
    units: Iterable[str] = SERVICES, *, systemd_dir: Path = Path("/run/systemd/system")
) -> Check:
    systemctl = shutil.which("systemctl")
    if systemctl is None or not systemd_dir.is_dir():
        return Check("services", UNKNOWN, "systemd is not running here")
    down: list[str] = []
    for unit in units:
        asked = subprocess.run(
            [systemctl, "is-active", unit], capture_output=True, text=True, timeout=30
        )
        state = asked.stdout.strip()
        if not state:
            # systemctl could not ask the running systemd (a user other than root asks over
            # the system bus: no D-Bus, no answer). Not "down", but not normal either: a warning
            # that says why, so that a dead bus does not hide a dead service for long.
            why = (asked.stderr.strip().splitlines() or [f"exit {asked.returncode}"])[0]
            return Check("services", WARN, f"cannot ask systemd: {why} (is dbus running?)")
        if state != "active":
            down.append(f"{unit} {state}")
    if down:
        return Check("services", FAIL, "; ".join(down))
    return Check("services", OK, ", ".join(units) + " active")


def check_tallies(inst: Instance) -> Check:
    """The dashboards' tallies (wbs.tallies): their triggers in place, and each institution's
    cases by status counted as the cases are."""
    with inst.engine.connect() as connection:
        found = tallies.problems(connection)
    if found:
        return Check("tallies", FAIL, "; ".join(found) + ": run peluit db tallies")
    return Check("tallies", OK, "dashboard counts agree with the cases")


def check_federation(inst: Instance, now: dt.datetime) -> Check | list[Check]:
    """The federation link, where there is one: a peer that has not synced for a day (the
    timer runs every five minutes), a member's last error, refusals in the last day."""
    with inst.sessions() as session:
        lines = [line for line in link_lines(session, now) if line.status == "active"]
        day_ago = now - dt.timedelta(days=1)
        refused = int(session.scalar(
            sa.select(sa.func.sum(FederationRefusal.repeated)).where(
                FederationRefusal.last_at >= day_ago
            )
        ) or 0)
    if not lines:
        return []  # not federated: nothing to say
    failures, warnings = [], []
    for line in lines:
        if line.stale:
            failures.append(
                f"{line.role} {line.name}: no sync for {line.lag_text}"
                if line.last_contact else f"{line.role} {line.name}: never synced"
            )
        if line.last_error:
            warnings.append(f"{line.role} {line.name}: {line.last_error}")
    if refused:
        warnings.append(f"{refused} refusal(s) in the last day (peluit federation status)")
    if failures:
        return Check("federation", FAIL, "; ".join(failures + warnings))
    if warnings:
        return Check("federation", WARN, "; ".join(warnings))
    return Check("federation", OK, f"{len(lines)} link(s) synced within a day")


# --- the command --------------------------------------------------------------------------------


def _guarded(name: str, check: Callable[[], Check | list[Check]]) -> list[Check]:
    """Run one check; a check that breaks is a failure, never a crash of the doctor (whose exit
    status 1 would read as a mere warning to monitoring)."""
    try:
        result = check()
    except Exception as exc:  # any breakage is reported as that check failing
        return [Check(name, FAIL, f"could not check: {type(exc).__name__}: {exc}")]
    return result if isinstance(result, list) else [result]


def run_checks(config: Config, tor_control: str, wait: float, key_days: int) -> list[Check]:
    now = dt.datetime.now(tz=dt.UTC)
    checks = [
        *_guarded("file modes", lambda: check_file_modes(config)),
        *_guarded("migrations", lambda: check_migrations(config)),
        *_guarded("disk", lambda: check_disk(config)),
    ]
    inst: Instance | None
    try:
        inst = Instance.open(config)
    except Exception as exc:  # a migration, secret or database problem
        inst = None
        checks.append(Check("instance", FAIL, f"cannot be opened: {exc}"))
    try:
        if inst is None:
            checks.append(Check("recipient keys", UNKNOWN, "the instance cannot be opened"))
        else:
            opened = inst
            checks.extend(
                _guarded("recipient keys", lambda: check_recipient_keys(opened, key_days, now))
            )
            checks.extend(_guarded("tallies", lambda: check_tallies(opened)))
            checks.extend(_guarded("federation", lambda: check_federation(opened, now)))
        checks.extend(_guarded("tor", lambda: check_tor(tor_control, inst, wait, now)))
    finally:
        if inst is not None:
            inst.close()
    checks.extend(_guarded("services", check_services))
    return checks


@click.command("doctor")
@click.option(
    "--tor-control",
    envvar="TOR_CONTROL",
    default=onions.DEFAULT_CONTROL,
    show_default=True,
    help="tor's control socket (unix:/path) or port (host:port).",
)
@click.option(
    "--wait",
    type=click.FloatRange(1, 600),
    default=30,
    show_default=True,
    help="Seconds to wait for tor to fetch each onion's descriptor back.",
)
@click.option(
    "--key-days",
    type=click.IntRange(1, 3650),
    default=30,
    show_default=True,
    help="Warn when a recipient key stops encrypting within this many days.",
)
@click.pass_context
def doctor(ctx: click.Context, tor_control: str, wait: float, key_days: int) -> None:
    """Check this server: tor, onions, disk, keys, clock, migrations, file modes, services.

    One line per check and a verdict. Exit status: 0 ok, 1 warning, 2 failure.
    """
    checks = run_checks(config_of(ctx), tor_control, wait, key_days)
    for item in checks:
        click.echo(item.line())
    code, line = verdict(checks)
    click.echo(line)
    ctx.exit(code)

