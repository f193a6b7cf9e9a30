"""``peluit-workstation``: the air-gapped side. Import, verify, decrypt, read, reply, dedupe.

Runs with no network at all and imports nothing of the server (no Flask, no SQLAlchemy, no
``wbs``): only :mod:`crypto` and the standard library, click and datasketch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from crypto.bundle import BundleError
from crypto.errors import CryptoError
from crypto.sketches import THRESHOLD
from workstation.cases import ShownItem, case_answers, decrypt_case, shown_items
from workstation.gpg import (
    MIN_NEW_PASSPHRASE_CHARACTERS,
    PassphraseNeeded,
    ProgressCallback,
    WorkstationGpg,
    check_new_passphrase,
)
from workstation.intake import CHANNELS, IntakeReport, write_package
from workstation.names import terminal_safe
from workstation.render import Words, render_case, when, write_case_page
from workstation.store import (
    CaseRecord,
    ItemRecord,
    State,
    Workstation,
    WorkstationError,
    default_home,
)

# Items smaller than this decrypt too fast for a progress bar to mean anything.
_PROGRESS_MIN_BYTES = 1024 * 1024


@contextmanager
def _errors() -> Iterator[None]:
    """Every expected failure becomes one clear line and exit status 1, never a traceback."""
    try:
        yield
    except (WorkstationError, CryptoError, BundleError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


def _ws(ctx: click.Context) -> Workstation:
    ws = ctx.obj
    assert isinstance(ws, Workstation)  # noqa: S101 - set by main() for every subcommand
    return ws


def _read_passphrase_file(path: Path | None) -> str | None:
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    # One line: a trailing newline from `echo` is not part of the passphrase.
    return text[:-1] if text.endswith("\n") else text


def _strong_passphrase(value: str) -> str:
    # Refused at the prompt, so the investigator types another instead of starting again.
    try:
        check_new_passphrase(value)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    return value


@click.group()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The workstation's data folder (default ~/.peluit-workstation or "
    "$PELUIT_WORKSTATION_HOME). Keep its path short: gpg-agent's socket lives in it.",
)
@click.option("--gpg", "gpg_binary", default="gpg", show_default=True, help="The gpg binary.")
@click.pass_context
def main(ctx: click.Context, home: Path | None, gpg_binary: str) -> None:
    """The Peluit air-gapped workstation."""
    ctx.obj = Workstation(home or default_home(), gpg_binary)


# --- keys ----------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """The investigators' keys on this workstation."""


@keys.command("generate")
@click.option("--name", required=True, help="Who holds the key, e.g. 'Tim WBS Pemprov Sumsel'.")
@click.option("--expire", default="3y", show_default=True, help="gpg expiry: 0, 365, 52w, 3y.")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the passphrase from this file instead of asking (for scripts and tests).",
)
@click.pass_context
def keys_generate(ctx: click.Context, name: str, expire: str, passphrase_file: Path | None) -> None:
    """Make an ed25519/cv25519 key pair protected by a passphrase."""
    ws = _ws(ctx)
    with _errors(), ws.locked():
        passphrase = _read_passphrase_file(passphrase_file)
        if passphrase is None:
            passphrase = click.prompt(
                "Passphrase for the new key (at least "
                f"{MIN_NEW_PASSPHRASE_CHARACTERS} characters, e.g. five words)",
                hide_input=True,
                confirmation_prompt=True,
                value_proc=_strong_passphrase,
            )
        gpg = WorkstationGpg(ws.gnupg_home, ws.gpg_binary)
        try:
            fingerprint = gpg.generate_key(name, passphrase, expire)
        finally:
            gpg.close()
    click.echo(f"created key {fingerprint}")
    click.echo(
        "give the server its public half: "
        f"peluit-workstation keys export {fingerprint} --output key.asc"
    )


@keys.command("export")
@click.argument("fingerprint")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def keys_export(ctx: click.Context, fingerprint: str, output: Path | None) -> None:
    """Write the armored PUBLIC key, to carry to the server's admin page."""
    ws = _ws(ctx)
    with _errors():
        armored = WorkstationGpg(ws.gnupg_home, ws.gpg_binary).export_public(fingerprint)
        if output is None:
            click.echo(armored, nl=False)
        else:
            output.write_text(armored, encoding="ascii")
            click.echo(f"wrote {output}")


@keys.command("import")
@click.argument("key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def keys_import(ctx: click.Context, key_file: Path) -> None:
    """Import keys (e.g. the instansi's secret key moved from another workstation)."""
    ws = _ws(ctx)
    with _errors(), ws.locked():
        gpg = WorkstationGpg(ws.gnupg_home, ws.gpg_binary)
        for fingerprint in gpg.import_keys(key_file.read_bytes()):
            click.echo(f"imported {fingerprint}")


@keys.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List the keys; 'sec' marks those whose secret half is here."""
    ws = _ws(ctx)
    with _errors():
        for key in WorkstationGpg(ws.gnupg_home, ws.gpg_binary).list_keys():
            mark = "sec" if key.has_secret else "pub"
            click.echo(f"{mark} {key.fingerprint} {terminal_safe(', '.join(key.uids))}")


# --- import and list ----------------------------------------------------------------------


@main.command("import")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--trust-new-signer",
    is_flag=True,
    help="Accept and pin a new instance signing key (after a key rotation, checked out of band).",
)
@click.pass_context
def import_(ctx: click.Context, bundle: Path, trust_new_signer: bool) -> None:
    """Verify an export bundle and import its cases; on any problem, import nothing."""
    ws = _ws(ctx)
    with _errors(), ws.locked():
        result = ws.import_bundle(bundle, trust_new_signer=trust_new_signer)
    if result.first_trust:
        click.echo(
            f"pinned the instance signing key {result.signer} (first bundle): compare it once "
            "with the fingerprint on the server's admin page"
        )
    elif trust_new_signer:
        click.echo(f"pinned the instance signing key {result.signer}")
    for key in result.cases:
        click.echo(f"imported {key}")
    click.echo(f"{result.new_items} new item(s), {result.known_items} already here")


@main.command("cases")
@click.pass_context
def cases_(ctx: click.Context) -> None:
    """List the imported cases."""
    ws = _ws(ctx)
    with _errors():
        state = ws.load()
    for case in state.cases.values():
        decrypted = sum(item.decrypted is not None for item in case.items)
        click.echo(
            f"{case.key}  {case.meta.get('status')}  {decrypted}/{len(case.items)} decrypted"
        )


# --- decrypt and read -----------------------------------------------------------------------


class _Bars:
    """One click progress bar per large item, fed by gpg's PROGRESS status lines."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def factory(self, item: ItemRecord) -> ProgressCallback | None:
        self.close()
        if item.size < _PROGRESS_MIN_BYTES:
            return None
        self._bar = click.progressbar(
            length=item.size, label=f"decrypting {item.kind} ({item.size // 1024**2} MiB)",
            file=sys.stderr,
        )
        self._bar.__enter__()
        self._done = 0

        def update(done: int, total: int) -> None:
            if self._bar is not None and done > self._done:
                self._bar.update(min(done, item.size) - self._done)
                self._done = min(done, item.size)

        return update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _decrypt(
    ws: Workstation, state: State, case: CaseRecord, passphrase_file: Path | None
) -> tuple[Path, tuple[str, ...]]:
    """Decrypt what is new, render case.html; return the page and the refused items."""
    passphrase = _read_passphrase_file(passphrase_file)

    def ask() -> str:
        if not sys.stdin.isatty():
            raise PassphraseNeeded(
                "the secret key is protected: give its passphrase with --passphrase-file "
                "or run in a terminal"
            )
        answer: str = click.prompt("Passphrase of the workstation key", hide_input=True)
        return answer

    bars = _Bars()
    gpg = WorkstationGpg(ws.gnupg_home, ws.gpg_binary)
    try:
        result = decrypt_case(ws, gpg, state, case, passphrase, ask, bars.factory)
    finally:
        bars.close()
        # The agent holds unlocked keys in memory; stop it rather than let it outlive us.
        gpg.close()
    page = render_case(case, shown_items(ws, case))
    return write_case_page(ws.case_dir(case), page), result.refused


def _refused(refused: tuple[str, ...]) -> None:
    """After the rest of the case was shown: name each refused item, and exit with status 1."""
    if refused:
        raise click.ClickException("\n".join(refused))


_passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The secret key's passphrase, from a file (for scripts and tests).",
)


@main.command("decrypt")
@click.argument("registration_number")
@_passphrase_option
@click.pass_context
def decrypt(ctx: click.Context, registration_number: str, passphrase_file: Path | None) -> None:
    """Decrypt a case into its folder and render it as case.html."""
    ws = _ws(ctx)
    with _errors(), ws.locked():
        state = ws.load()
        case = ws.find_case(state, registration_number)
        page, refused = _decrypt(ws, state, case, passphrase_file)
    click.echo(f"decrypted into {ws.case_dir(case) / 'decrypted'}")
    click.echo(f"open {page}")
    _refused(refused)


def _show(ws: Workstation, case: CaseRecord, items: list[ShownItem]) -> None:
    click.echo(f"== {case.key} ({terminal_safe(case.tenant_name)})")
    words = Words(case.meta.get("labels"))
    # Labels come from the bundle: made terminal-safe like everything else it carries.
    status = terminal_safe(words("status", case.meta.get("status")))
    click.echo(f"status: {status}  diterima: {when(case.meta.get('received_at'))}")
    for shown in items:
        item = shown.item
        kind = terminal_safe(words("item", item.kind))
        click.echo(f"\n-- {shown.number:02d} {kind} {when(item.created_at)}")
        if shown.answers is not None:
            for key, value in shown.answers.items():
                click.echo(f"{key}: {terminal_safe(value)}")
        elif shown.text is not None:
            click.echo(terminal_safe(shown.text))
        elif item.decrypted is not None:
            click.echo(f"file: {terminal_safe(str(ws.case_dir(case) / item.decrypted))}")


@main.command("read")
@click.argument("registration_number")
@_passphrase_option
@click.pass_context
def read(ctx: click.Context, registration_number: str, passphrase_file: Path | None) -> None:
    """Decrypt a case if needed, show its answers and messages, and render case.html."""
    ws = _ws(ctx)
    with _errors(), ws.locked():
        state = ws.load()
        case = ws.find_case(state, registration_number)
        page, refused = _decrypt(ws, state, case, passphrase_file)
        _show(ws, case, shown_items(ws, case))
    click.echo(f"\nopen {page}")
    _refused(refused)


# --- reply ---------------------------------------------------------------------------------


@main.command("reply")
@click.argument("registration_number")
@click.option("--message", "-m", help="The reply text (otherwise stdin, or $EDITOR in a terminal).")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="Fingerprint of an instansi key to encrypt to as well (default: the keys the case's "
    "items are encrypted to that are on this workstation).",
)
@click.pass_context
def reply(
    ctx: click.Context, registration_number: str, message: str | None, recipients: tuple[str, ...]
) -> None:
    """Encrypt a reply to the pelapor into the outbox, to carry back to the server."""
    from workstation.reply import write_reply

    ws = _ws(ctx)
    with _errors(), ws.locked():
        state = ws.load()
        case = ws.find_case(state, registration_number)
        if message is None:
            if sys.stdin.isatty():
                message = click.edit("\n# Balasan untuk pelapor. Baris '#' diabaikan.\n") or ""
                message = "\n".join(
                    line for line in message.splitlines() if not line.startswith("#")
                )
            else:
                message = sys.stdin.read()
        target = write_reply(ws, case, message, recipients)
    click.echo(f"encrypted reply written to {target}")
    click.echo("upload it on the case page as a pre-encrypted reply")


# --- operator intake -----------------------------------------------------------------------

_PROMPTS = {
    "apa": "apa: what happened",
    "siapa": "siapa: who did it",
    "kapan": "kapan: when",
    "dimana": "dimana: where",
    "bagaimana": "bagaimana: how",
    "berapa": "berapa: how much (optional)",
    "kronologi": "kronologi: the story in order (optional)",
}


def _read_answers(path: Path | None) -> dict[str, str]:
    """The answers from a JSON file, or asked one by one."""
    if path is not None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise click.UsageError(f"{path}: not a JSON object of answers ({exc})") from exc
        if not isinstance(data, dict) or not all(
            isinstance(value, str) for value in data.values()
        ):
            raise click.UsageError(f"{path}: a JSON object of text answers is expected")
        return {str(key): value for key, value in data.items()}
    return {
        field: click.prompt(prompt, default="", show_default=False)
        for field, prompt in _PROMPTS.items()
    }


@main.command("intake")
@click.option("--tenant", required=True, help="The instansi's slug, e.g. pemprov-sumsel.")
@click.option(
    "--channel", required=True, type=click.Choice(CHANNELS),
    help="Where the report arrived.",
)
@click.option("--category", required=True, help="The category code, e.g. suap_menyuap.")
@click.option("--mcp-area", default=None, help="The MCP area code, if any.")
@click.option("--to-kpk", is_flag=True, help="The report goes to KPK as well.")
@click.option(
    "--recipient", "recipients", multiple=True, required=True,
    help="Fingerprint of each current key of the instansi (and of KPK with --to-kpk), as the "
    "server's intake page lists them.",
)
@click.option(
    "--answers", "answers_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A JSON object with the answers (apa, siapa, kapan, dimana, bagaimana, berapa, "
    "kronologi); without it each is asked.",
)
@click.option(
    "--attach", "attachments", multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file the reporter gave (a letter's scan, a photo); up to 20.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def intake(
    ctx: click.Context, tenant: str, channel: str, category: str, mcp_area: str | None,
    to_kpk: bool, recipients: tuple[str, ...], answers_file: Path | None,
    attachments: tuple[Path, ...], output: Path | None,
) -> None:
    """Encrypt a report that arrived elsewhere into an intake package, to upload."""
    ws = _ws(ctx)
    answers = _read_answers(answers_file)
    report = IntakeReport(
        tenant=tenant, channel=channel, category=category, mcp_area=mcp_area or None,
        to_kpk=to_kpk, answers=answers, attachments=attachments,
    )
    with _errors(), ws.locked():
        target = write_package(ws, report, recipients, output)
    click.echo(f"intake package written to {target}")
    click.echo(
        "upload it on the server (Catat pengaduan); hand the codename it shows to the reporter "
        "through the same channel"
    )


# --- pelimpahan (forwarding) ---------------------------------------------------------------


@main.command("forward")
@click.argument("registration_number")
@click.option("--to", "to", required=True, help="The receiving institution's slug.")
@click.option(
    "--keys", "key_list", required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The receiving institution's signed key list, from the server.",
)
@_passphrase_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--sign-with", "sign_with", metavar="FINGERPRINT",
    help="The institution's own key that signs the package (one of its current recipient "
    "keys, secret half on this workstation); default: the key that decrypted the case.",
)
@click.pass_context
def forward(
    ctx: click.Context, registration_number: str, to: str, key_list: Path,
    passphrase_file: Path | None, output: Path | None, sign_with: str | None,
) -> None:
    """Re-encrypt a case for another institution into a signed forwarding package, to upload."""
    from workstation.forward import write_forward_package

    ws = _ws(ctx)
    passphrase = _read_passphrase_file(passphrase_file)

    def ask() -> str:
        if not sys.stdin.isatty():
            raise PassphraseNeeded(
                "the secret key is protected: give its passphrase with --passphrase-file "
                "or run in a terminal"
            )
        answer: str = click.prompt("Passphrase of the workstation key", hide_input=True)
        return answer

    with _errors(), ws.locked():
        state = ws.load()
        case = ws.find_case(state, registration_number)
        target = write_forward_package(
            ws, state, case, to, key_list, passphrase, ask, output, sign_with
        )
    click.echo(f"forwarding package written to {target}")
    click.echo("upload it on the case page (Limpahkan) on the server")


# --- duplicates ----------------------------------------------------------------------------


def _decrypted_reports(
    ws: Workstation, tenant: str | None = None
) -> tuple[dict[str, dict[str, str]], int]:
    """The form answers of every decrypted case (of one instansi with ``tenant``), by case
    key; and how many cases were left out for not being decrypted yet."""
    state = ws.load()
    reports: dict[str, dict[str, str]] = {}
    skipped = 0
    for case in state.cases.values():
        if tenant is not None and case.tenant != tenant:
            continue
        answers = case_answers(ws, case)
        if answers is None:
            skipped += 1
        else:
            reports[case.key] = answers
    return reports, skipped


@main.command("duplicates")
@click.option(
    "--threshold", default=THRESHOLD, show_default=True, type=click.FloatRange(0.01, 1.0)
)
@click.pass_context
def duplicates(ctx: click.Context, threshold: float) -> None:
    """Near-duplicate reports across all decrypted cases, of every instansi.

    Scored as the server scores uploaded sketches: the narrative and the form's fields
    (terlapor, place, amount, period), normalised. Locally the key does not matter: without an
    imported sketch key a throwaway one is used.
    """
    from crypto.sketches import part_similarities, similar_pairs
    from workstation.sketches import generate_key, reasons, signatures

    ws = _ws(ctx)
    with _errors():
        reports, skipped = _decrypted_reports(ws)
        key = _sketch_key(ws) if _sketch_key_path(ws).exists() else generate_key()
        keys = sorted(reports)
        sketches = [signatures(key, reports[case_key]) for case_key in keys]
        pairs = similar_pairs(sketches, threshold=threshold)
    for i, j, value in pairs:
        why = ", ".join(reasons(part_similarities(sketches[i], sketches[j])))
        click.echo(f"{value:.2f}  {keys[i]}  {keys[j]}  {why}")
    click.echo(f"{len(pairs)} pair(s) among {len(reports)} decrypted case(s)", err=True)
    if skipped:
        click.echo(f"{skipped} case(s) not decrypted yet were left out", err=True)


# --- keyed sketches for the server ---------------------------------------------------------


def _sketch_key_path(ws: Workstation) -> Path:
    return ws.home / "sketch.key"


def _sketch_key(ws: Workstation) -> bytes:
    from workstation.sketches import read_key_file

    path = _sketch_key_path(ws)
    if not path.exists():
        raise WorkstationError(
            "no sketch key on this workstation: import the one KPK handed out with "
            "'peluit-workstation sketch-key import FILE'"
        )
    return read_key_file(path)


@main.group("sketch-key")
def sketch_key() -> None:
    """The secret key of the similarity sketches, shared by KPK's and the instansi's
    workstations (offline) and never given to the server."""


@sketch_key.command("generate")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="Where to write the new key file, to carry to the other workstations.",
)
@click.pass_context
def sketch_key_generate(ctx: click.Context, output: Path) -> None:
    """Make a new sketch key (once, at KPK), install it here and write it to a file."""
    from workstation.sketches import generate_key, key_id, write_key_file

    ws = _ws(ctx)
    with _errors(), ws.locked():
        if _sketch_key_path(ws).exists():
            raise WorkstationError(
                "this workstation already has a sketch key; a new one makes its sketches "
                "incomparable with every other workstation's. Remove sketch.key first if you "
                "mean it."
            )
        key = generate_key()
        write_key_file(output, key)
        write_key_file(_sketch_key_path(ws), key)
    click.echo(f"sketch key {key_id(key)} written to {output} and installed here")
    click.echo("carry it to each workstation offline; never upload it to the server")


@sketch_key.command("import")
@click.argument("key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def sketch_key_import(ctx: click.Context, key_file: Path) -> None:
    """Install the sketch key KPK handed out (replaces any key here)."""
    from workstation.sketches import key_id, read_key_file, write_key_file

    ws = _ws(ctx)
    with _errors(), ws.locked():
        key = read_key_file(key_file)
        write_key_file(_sketch_key_path(ws), key)
    click.echo(f"installed sketch key {key_id(key)}")


@main.group("sketches")
def sketches_() -> None:
    """Keyed similarity sketches of the decrypted cases, for the server's duplicate check."""


@sketches_.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--tenant", default=None,
    help="Only the cases of this instansi (its slug): the server takes a tenant's own cases.",
)
@click.pass_context
def sketches_export(ctx: click.Context, output: Path, tenant: str | None) -> None:
    """Write registration numbers and keyed signatures, no text, to upload to the server."""
    from workstation.sketches import sketch_document

    ws = _ws(ctx)
    with _errors():
        key = _sketch_key(ws)
        reports, skipped = _decrypted_reports(ws, tenant)
        if not reports:
            raise WorkstationError("no decrypted case to sketch")
        tenants = sorted({case_key.split("/", 1)[0] for case_key in reports})
        if len(tenants) > 1:
            # The server takes an upload for the uploader's own instansi only, whole or not at
            # all: one file per instansi.
            raise WorkstationError(
                f"decrypted cases of several instansi here ({', '.join(tenants)}): choose one "
                "with --tenant"
            )
        by_number = {case_key.split("/", 1)[1]: answers for case_key, answers in reports.items()}
        document = sketch_document(key, by_number)
        output.write_text(json.dumps(document.to_json(), separators=(",", ":")), encoding="ascii")
    click.echo(f"{len(document.sketches)} sketch(es) written to {output}")
    if skipped:
        click.echo(f"{skipped} case(s) not decrypted yet were left out", err=True)


if __name__ == "__main__":
    main()
