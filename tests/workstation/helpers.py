"""Building real bundles from a demo instance, and running the workstation CLI on them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result

from crypto.codenames import generate_codename
from crypto.kdf import SourceSecrets
from tests.conftest import DemoInstance
from wbs.bundle import write_bundle
from wbs.casework import post_reply
from wbs.context import Context
from wbs.intake import Intake, ReportAnswers
from wbs.models import Case
from wbs.sources import register_source
from wbs.tenants import get_tenant
from workstation.cli import main

TENANT = "pemprov-sumsel"
BIG_NAME = "../../etc/passwd"
BIDI_NAME = "laporan\u202efdp.exe"
MESSAGE = "Tambahan: <script>alert(1)</script> saksi ada dua orang."
REPLY = "Mohon kirim salinan kontrak."


def answers(**changes: str) -> ReportAnswers:
    values = {
        "category": "suap_menyuap",
        "mcp_area": "pengadaan_barang_jasa",
        "apa": "Suap pengadaan alat kesehatan <b>RSUD</b> & fee",
        "siapa": "Bapak Ahmad Fauzi, S.E.",
        "kapan": "Maret 2026",
        "dimana": "Dinas Kesehatan Provinsi",
        "bagaimana": "Fee 10% dari nilai kontrak dibayar tunai di kantor",
        "berapa": "Rp 500 juta",
        "kronologi": "Pada awal Maret pemenang lelang menyerahkan uang kepada kepala bidang.",
    }
    values.update(changes)
    return ReportAnswers(**values)


@dataclass
class LoopCase:
    demo: DemoInstance
    case_id: int
    registration_number: str
    secrets: SourceSecrets
    files: dict[str, bytes] = field(default_factory=dict)


def upload(intake: Intake, name: str, data: bytes) -> None:
    sink = intake.open_file("file", name, {})
    for start in range(0, len(data), 65536):
        sink.write(data[start : start + 65536])
    sink.close()


def make_case(demo: DemoInstance, big_size: int = 1_200_000, **changes: str) -> LoopCase:
    """A form, a >1 MB file with a path for a name, a bidi-named file, a message, a reply."""
    inst = demo.instance
    big = os.urandom(big_size)
    small = b"MZ not really an exe"
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        secrets = register_source(Context(inst, session, tenant), generate_codename())
        intake = Intake(Context(inst, session, tenant), secrets.source_id, to_kpk=False)
        upload(intake, BIG_NAME, big)
        upload(intake, BIDI_NAME, small)
        case = intake.new_case(answers(**changes))
        ctx = Context(inst, session, tenant)
        Intake(ctx, secrets.source_id, to_kpk=False).follow_up(case, MESSAGE)
        post_reply(Context(inst, session, tenant), case, REPLY)
        return LoopCase(
            demo, case.id, case.registration_number, secrets, {"big": big, "small": small}
        )


def export(demo: DemoInstance, case_ids: list[int], path: Path) -> Path:
    inst = demo.instance
    with inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        cases = [session.get(Case, case_id) for case_id in case_ids]
        with path.open("wb") as out:
            write_bundle(inst, session, tenant, cases, out)  # type: ignore[arg-type]
    return path


def workstation_home(demo: DemoInstance, home: Path) -> Path:
    """A workstation folder whose GnuPG home holds the demo tenants' secret keys."""
    shutil.copytree(demo.workstation, home / "gnupg", ignore=shutil.ignore_patterns("S.*"))
    os.chmod(home, 0o700)
    return home


def run(home: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], input=input)


def kill_agent(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home / "gnupg"), "--kill", "gpg-agent"],
        check=False,
        capture_output=True,
    )


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its content, to compare before and after."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.startswith(("S.", ".lock")) and "gnupg" not in p.parts
    }
