"""An installed server's first day, run INSIDE the booted server by test_booted.py and
test_booted_pg.py (tests/deploy/booted.py: ``journey``).

``/opt/peluit/.venv/bin/python first_day.py STEP ARGS...``, one of:

- ``day SOURCE_ONION ADMIN PASSPHRASE TOTP_SECRET KEY_FILE MARKER``: the first admin logs in
  with the installer's one-time credentials, reads the signing fingerprint on the keys page and
  adds the workstation's public key there; a reporter files a report with a file on the
  instansi's source interface (no JavaScript: plain form posts), both carrying MARKER (a word
  found nowhere else, so the test can look for it on the disk); the admin finds the report in
  the inbox.
- ``report SOURCE_ONION MARKER``: another reporter files a report.
- ``back SOURCE_ONION ADMIN PASSPHRASE TOTP_SECRET CODENAME RECEIPT...``: after a restore, the
  admin logs in again and the reporter with CODENAME too; which RECEIPTs each of them sees.

Uses only what the installed virtualenv holds (requests, pyotp) and talks to the services as
tor would forward a visitor: over 127.0.0.1, to the ports the onions point at, with the onion
as Host. Prints one JSON object: what each step saw.
"""

from __future__ import annotations

import json
import re
import sys

import pyotp
import requests

SOURCE = "http://127.0.0.1:8080"
INVESTIGATOR = "http://127.0.0.1:8081"


def field(name: str, html: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    if not found:
        raise AssertionError(f"no {name} in the page: {html[:500]!r}")
    return found.group(1)


def log_in(admin: str, passphrase: str, totp_secret: str,
           seen: dict[str, object]) -> requests.Session:
    staff = requests.Session()
    login = staff.get(f"{INVESTIGATOR}/masuk", timeout=60)
    inbox = staff.post(f"{INVESTIGATOR}/masuk", timeout=60, data={
        "csrf_token": field("csrf_token", login.text), "username": admin,
        "password": passphrase, "totp": pyotp.TOTP(totp_secret).now(),
    })
    seen["login"] = [login.status_code, inbox.status_code, inbox.url.removeprefix(INVESTIGATOR),
                     'action="/keluar"' in inbox.text]
    return staff


def report(source_onion: str, marker: str, seen: dict[str, object]) -> str | None:
    """A new codename and a report with a file; the receipt's registration number."""
    reporter = requests.Session()
    reporter.headers["Host"] = source_onion
    landing = reporter.get(f"{SOURCE}/", timeout=60)
    codename = reporter.get(f"{SOURCE}/kode-baru", timeout=60)
    registered = reporter.post(f"{SOURCE}/kode-baru", timeout=120, data={
        "csrf_token": field("csrf_token", codename.text),
        "codename": field("codename", codename.text), "tag": field("tag", codename.text),
        "noted": "1",
    })
    # Kept by the test (a made-up reporter's) to log in again after a restore.
    seen["codename"] = field("codename", codename.text)
    form = reporter.get(f"{SOURCE}/lapor", timeout=60)
    answers = {
        "csrf_token": field("csrf_token", form.text), "website": "",
        "category": "suap_menyuap", "mcp_area": "perizinan",
        "apa": f"Kepala seksi meminta uang pelicin untuk menerbitkan izin usaha ({marker}).",
        "siapa": "Kepala Seksi Perizinan, Dinas Penanaman Modal",
        "kapan": "Maret 2026", "dimana": "Kantor Dinas Penanaman Modal",
        "bagaimana": "Pemohon diminta transfer ke rekening pribadi sebelum izin terbit.",
        "berapa": "Rp5.000.000 per izin", "kronologi": "",
    }
    sent = reporter.post(f"{SOURCE}/lapor", timeout=300, data=answers, files={
        "file": ("bukti-transfer.txt", f"Bukti transfer {marker}-file, Maret 2026.\n".encode()),
    })
    receipt = re.search(r'class="regno">([A-Z0-9-]+)<', sent.text)
    seen["report"] = [landing.status_code, registered.status_code, sent.status_code,
                      receipt.group(1) if receipt else sent.text[:2000]]
    return receipt.group(1) if receipt else None


def day(source_onion: str, admin: str, passphrase: str, totp_secret: str, key_file: str,
        marker: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    staff = log_in(admin, passphrase, totp_secret, seen)
    keys = staff.get(f"{INVESTIGATOR}/admin/kunci", timeout=60)
    shown = re.search(r'id="signing-fingerprint">([0-9A-F]{40})<', keys.text)
    seen["signing_fingerprint"] = shown.group(1) if shown else None
    with open(key_file, encoding="ascii") as armored:
        added = staff.post(f"{INVESTIGATOR}/admin/kunci", timeout=120, data={
            "csrf_token": field("csrf_token", keys.text), "owner": "Inspektorat, tim 1",
            "armored": armored.read(),
        })
    seen["key_added"] = [added.status_code, "Inspektorat, tim 1" in added.text]
    refused = re.search(r'id="e-key">([^<]*)<', added.text)
    if refused:  # why, for the test's message
        seen["key_refused"] = refused.group(1)
    receipt = report(source_onion, marker, seen)
    again = staff.get(f"{INVESTIGATOR}/", timeout=60)
    seen["inbox_has_report"] = receipt is not None and receipt in again.text
    return seen


def back(source_onion: str, admin: str, passphrase: str, totp_secret: str, codename: str,
         *receipts: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    staff = log_in(admin, passphrase, totp_secret, seen)
    inbox = staff.get(f"{INVESTIGATOR}/", timeout=60).text
    seen["inbox"] = [number for number in receipts if number in inbox]
    reporter = requests.Session()
    reporter.headers["Host"] = source_onion
    login = reporter.get(f"{SOURCE}/masuk", timeout=60)
    cases = reporter.post(f"{SOURCE}/masuk", timeout=120, data={
        "csrf_token": field("csrf_token", login.text), "codename": codename,
    })
    seen["reporter"] = [cases.status_code, cases.url.removeprefix(SOURCE),
                        [number for number in receipts if number in cases.text]]
    return seen


if __name__ == "__main__":
    step, args = sys.argv[1], sys.argv[2:]
    if step == "day":
        print(json.dumps(day(*args[:6])))
    elif step == "report":
        found: dict[str, object] = {}
        report(args[0], args[1], found)
        print(json.dumps(found))
    elif step == "back":
        print(json.dumps(back(*args)))
    else:
        sys.exit(f"unknown step {step!r}")
