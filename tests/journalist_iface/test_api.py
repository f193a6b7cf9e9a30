"""The JSON API (/api/v1): bearer tokens, the case endpoints, tenant isolation, the OpenAPI file.

Like test_isolation.py, the routes come from ``app.url_map``: every /api/ URL with a
``case_id`` must answer 404 to another tenant's investigator, and every /api/ route but the
login needs a token.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crypto.encrypt import encrypt_bytes
from crypto.replykeys import encrypt_reply
from iface_common.app import SECURITY_HEADERS
from tests.journalist_iface.conftest import (
    HUB,
    TENANT,
    Account,
    Demo,
    add_bare_cases,
    logged_in,
    make_account,
    make_report,
)
from tests.support import wib_today
from wbs.accounts import LOGIN_FAILED_MESSAGE
from wbs.context import Context
from wbs.domain import CaseStatus, EventKind, Role
from wbs.models import Case, Event
from wbs.sources import source_replies
from wbs.tenants import current_recipients, get_tenant

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Api:
    """A client of the API with a bearer token."""

    def __init__(self, client: FlaskClient, account: Account, token: str) -> None:
        self.client, self.account, self.token = client, account, token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def open(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("POST", path, **kwargs)


def api_login(demo: Demo, tenant: str = TENANT, role: Role = Role.VERIFIKATOR) -> Api:
    client = demo.app.test_client()
    account = make_account(demo, tenant, role)
    response = client.post(
        "/api/v1/token",
        json={"username": account.username, "password": account.password, "totp": account.code()},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    return Api(client, account, body["token"])


def _api_rules(app: Flask) -> list[tuple[str, str, list[str]]]:
    """(method, rule, arguments) of every /api/ route."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            for method in sorted(m for m in (rule.methods or set()) if m in METHODS):
                found.append((method, rule.rule, sorted(rule.arguments)))
    return found


def _url(rule: str, case_id: int) -> str:
    url = rule.replace("<int:case_id>", str(case_id))
    return re.sub(r"<int:\w+>", "1", url)


def _case_rules(app: Flask) -> list[tuple[str, str]]:
    found = [(method, rule) for method, rule, args in _api_rules(app) if "case_id" in args]
    assert len(found) >= 5  # case, item, bundle, replies, status
    return found


def _send(api: Api, method: str, url: str) -> TestResponse:
    if url.endswith("/replies"):
        return api.open(method, url, data=b"x", content_type="application/pgp-encrypted")
    return api.open(method, url, json={"status": "verifikasi", "note": "x"})


# --- tokens ---------------------------------------------------------------------------------


def test_a_token_opens_the_api_and_logging_out_ends_it(demo: Demo) -> None:
    client = demo.app.test_client()
    account = make_account(demo)
    response = client.post(
        "/api/v1/token",
        json={"username": account.username, "password": account.password, "totp": account.code()},
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at", "idle_timeout_seconds"}
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)
    # A token, not a cookie.
    assert "Set-Cookie" not in response.headers
    api = Api(client, account, body["token"])
    assert api.get("/api/v1/cases").status_code == 200
    assert api.open("DELETE", "/api/v1/token").status_code == 204
    gone = api.get("/api/v1/cases")
    assert gone.status_code == 401
    assert gone.get_json()["error"] == "unauthorized"
    assert gone.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_login_failure_answers_the_same(demo: Demo) -> None:
    account = make_account(demo)
    client = demo.app.test_client()
    good = {"username": account.username, "password": account.password, "totp": account.code()}
    wrong_code = f"{(int(good['totp']) + 1) % 1_000_000:06d}"
    attempts: list[Any] = [
        {**good, "password": "salah sekali kata sandinya"},
        {**good, "totp": wrong_code},
        {**good, "username": "tidakada"},
        {"username": account.username, "password": account.password},
        {**good, "totp": 123456},
        ["not", "an", "object"],
    ]
    bodies = []
    for attempt in attempts:
        response = client.post("/api/v1/token", json=attempt)
        assert response.status_code == 401
        bodies.append(response.get_data())
    not_json = client.post("/api/v1/token", data="username=x", content_type="text/plain")
    assert not_json.status_code == 401
    bodies.append(not_json.get_data())
    assert len(set(bodies)) == 1
    assert json.loads(bodies[0]) == {"error": "login_failed", "message": LOGIN_FAILED_MESSAGE}
    # The right code still works after the failures (fewer than the free ones).
    assert client.post("/api/v1/token", json=good).status_code == 201


def test_every_api_route_needs_a_token(demo: Demo) -> None:
    report = make_report(demo)
    client = demo.app.test_client()
    rules = _api_rules(demo.app)
    assert ("DELETE", "/api/v1/token", []) in rules
    for method, rule, _ in rules:
        if (method, rule) == ("POST", "/api/v1/token"):
            continue
        url = _url(rule, report.case_id)
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
            response = client.open(url, method=method, headers=headers)
            assert response.status_code == 401, (method, url, headers)
            assert response.get_json()["error"] == "unauthorized"
    # A browser's session cookie is no token.
    browser = logged_in(demo)
    assert browser.get("/api/v1/cases").status_code == 401
    assert browser.get(f"/api/v1/cases/{report.case_id}").status_code == 401
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None and case.status == CaseStatus.BARU


def test_api_answers_carry_the_security_headers_and_need_no_csrf_token(demo: Demo) -> None:
    api = api_login(demo)
    report = make_report(demo)
    for response in (
        api.get("/api/v1/cases"),
        api.get(f"/api/v1/cases/{report.case_id}"),
        api.get("/api/v1/cases/999999"),
        demo.app.test_client().get("/api/v1/cases"),
    ):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, name
        assert response.mimetype == "application/json"
    # A JSON POST without any CSRF token goes through: the API is exempt, it reads no cookie.
    changed = api.post(f"/api/v1/cases/{report.case_id}/status", json={"status": "verifikasi"})
    assert changed.status_code == 200, changed.get_data(as_text=True)


# --- cases ----------------------------------------------------------------------------------


def test_the_case_list_filters_and_pages(demo: Demo) -> None:
    api = api_login(demo, HUB, Role.ADMIN_INSTANSI)
    past = wib_today() - dt.timedelta(days=3)
    overdue = add_bare_cases(demo, 2, HUB, first_response_due=past)
    telaah = add_bare_cases(demo, 1, HUB, status=CaseStatus.TELAAH, unread=False)
    many = add_bare_cases(demo, 50, HUB, unread=False)
    foreign = make_report(demo, TENANT)
    first = api.get("/api/v1/cases").get_json()
    assert first["total"] == 53 and first["pages"] == 2 and first["per_page"] == 50
    assert len(first["cases"]) == 50
    # Deadline order: the overdue ones come first.
    assert [case["id"] for case in first["cases"][:2]] == overdue
    second = api.get("/api/v1/cases?page=2").get_json()
    ids = {case["id"] for case in first["cases"] + second["cases"]}
    assert ids == set(overdue + telaah + many) and foreign.case_id not in ids
    row = first["cases"][0]
    assert row["overdue"] is True and row["unread"] is True and row["status"] == "baru"
    assert row["first_response_due"] == past.isoformat() and row["assignee"] is None
    assert {"registration_number", "category", "mcp_area", "closure_due"} <= set(row)
    # No closure deadline on these bare rows: the closure is judged neither way.
    assert row["first_response"] == "missing" and row["closure"] == "unknown"

    def ids_of(query: str) -> set[int]:
        response = api.get(f"/api/v1/cases?{query}")
        assert response.status_code == 200, query
        return {case["id"] for case in response.get_json()["cases"]}

    assert ids_of("status=telaah") == set(telaah)
    assert ids_of("overdue=1") == set(overdue)
    assert ids_of("unread=true") == set(overdue)
    assert ids_of("unread=1&status=telaah") == set()
    # "²" and "٣" pass str.isdigit() but not int(); 5,000 digits pass neither int() nor a page.
    malformed_pages = ("page=²", "page=٣", "page=" + "9" * 5000, "page=-1", "page=1.5")
    for bad in ("status=bogus", "page=0", "page=x", "unread=yes", "overdue=2", *malformed_pages):
        response = api.get(f"/api/v1/cases?{bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["error"] == "bad_argument"


def test_a_case_with_its_timeline_and_items(demo: Demo) -> None:
    report = make_report(demo, files=(b"bukti satu", b"bukti dua"))
    api = api_login(demo)
    response = api.get(f"/api/v1/cases/{report.case_id}")
    assert response.status_code == 200
    case = response.get_json()
    assert case["registration_number"] == report.registration_number
    assert case["status"] == "baru" and case["category"] == "suap_menyuap"
    assert case["mcp_area"] == "perizinan"
    assert "verifikasi" in case["next_statuses"] and "selesai" not in case["next_statuses"]
    assert case["timeline"][0]["kind"] == EventKind.CASE_CREATED.value
    items = case["items"]
    assert [item["number"] for item in items] == [1, 2, 3]
    assert sorted(item["kind"] for item in items) == ["file", "file", "form"]
    # Padded inside the encryption: two files of 10 and 9 bytes are one size, as the form.
    assert {item["framing"] for item in items} == {"padme/1"}
    assert len({item["size"] for item in items}) == 1
    for item in items:
        download = api.get(f"/api/v1/cases/{report.case_id}/items/{item['number']}")
        assert download.status_code == 200
        assert download.mimetype == "application/octet-stream"
        data = download.get_data()
        assert len(data) == item["size"] and b"bukti" not in data  # ciphertext only
        assert item["filename"] in download.headers["Content-Disposition"]
    missing = api.get(f"/api/v1/cases/{report.case_id}/items/4")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    with demo.inst.sessions() as session:
        notes = session.scalars(sa.select(Event.note).where(
            Event.case_id == report.case_id, Event.kind == EventKind.ITEM_DOWNLOADED)).all()
    assert sorted(notes) == ["file #2", "file #3", "form #1"]


def test_the_bundle_is_a_signed_zip_and_the_export_is_logged(demo: Demo) -> None:
    report = make_report(demo, files=(b"bukti",))
    api = api_login(demo)
    response = api.get(f"/api/v1/cases/{report.case_id}/bundle")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as bundle:
        names = bundle.namelist()
    assert any(name.endswith(".sig") for name in names) and len(names) >= 4
    with demo.inst.sessions() as session:
        kinds = [
            event.kind
            for event in session.query(Event).filter(Event.case_id == report.case_id)
        ]
    assert EventKind.EXPORTED in kinds


# --- replies --------------------------------------------------------------------------------


def _ciphertexts(demo: Demo, case_id: int) -> tuple[bytes, bytes]:
    """A reply as `peluit-workstation reply` makes it, and one the pelapor could not read."""
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, case_id)
        assert case is not None
        recipients = current_recipients(session, tenant)
        good = encrypt_reply(
            demo.inst.keyring, recipients, case.source.reply_public_key, b"Dijawab via API."
        )
        without_source = encrypt_bytes(demo.inst.keyring, recipients, b"Tanpa kunci pelapor.")
    return good, without_source


def test_a_reply_encrypted_on_the_workstation_is_accepted_or_refused(demo: Demo) -> None:
    report = make_report(demo)
    api = api_login(demo)
    url = f"/api/v1/cases/{report.case_id}/replies"
    good, without_source = _ciphertexts(demo, report.case_id)

    wrong_type = api.post(url, data=good, content_type="text/plain")
    assert wrong_type.status_code == 415
    for data, reason in (
        (b"not openpgp", "not an encrypted reply"),
        (b"", "between 1 byte"),
        (without_source, "pelapor's reply key"),
    ):
        refused = api.post(url, data=data, content_type="application/pgp-encrypted")
        assert refused.status_code == 400
        body = refused.get_json()
        assert body["error"] == "reply_refused" and reason in body["message"], body
    too_large = api.post(url, data=b"\x85" * (1024 * 1024 + 1),
                         content_type="application/octet-stream")
    assert too_large.status_code == 413 and too_large.get_json()["error"] == "too_large"

    sent = api.post(url, data=good, content_type="application/octet-stream")
    assert sent.status_code == 201, sent.get_data(as_text=True)
    reply_id = sent.get_json()["id"]
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None and [reply.id for reply in case.replies] == [reply_id]
        assert demo.inst.store.open(case.replies[0].store_path).read() == good
        ctx = Context(demo.inst, session, tenant)
        texts = [t for _, t in source_replies(ctx, report.secrets, case)]
    assert texts == ["Dijawab via API."]
    items = api.get(f"/api/v1/cases/{report.case_id}").get_json()["items"]
    assert items[-1]["kind"] == "reply" and items[-1]["size"] == len(good)
    assert items[-1]["framing"] == "padme/1"


# --- status ---------------------------------------------------------------------------------


def test_status_changes_follow_the_web_rules(demo: Demo) -> None:
    report = make_report(demo)
    api = api_login(demo)
    url = f"/api/v1/cases/{report.case_id}/status"

    def change(body: Any) -> TestResponse:
        return api.post(url, json=body)

    for body, status, code in (
        ({"status": "diarsipkan"}, 400, "note_required"),
        ({"status": "diarsipkan", "note": "   "}, 400, "note_required"),
        ({"status": "klarifikasi", "note": None}, 400, "note_required"),
        ({"status": "diarsipkan", "note": "x" * 501}, 400, "note_too_long"),
        ({"status": "selesai"}, 409, "transition_refused"),
        ({"status": "bogus"}, 400, "bad_status"),
        ({"status": 3}, 400, "bad_request"),
        ({"status": "verifikasi", "extra": 1}, 400, "bad_request"),
        (["verifikasi"], 400, "bad_request"),
    ):
        response = change(body)
        assert response.status_code == status, body
        assert response.get_json()["error"] == code, body
    not_json = api.post(url, data="status=verifikasi",
                        content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 400

    moved = change({"status": "verifikasi"})
    assert moved.status_code == 200 and moved.get_json()["status"] == "verifikasi"
    question = "Kapan tepatnya transfer itu terjadi?"
    asked = change({"status": "klarifikasi", "note": question})
    assert asked.status_code == 200
    case_json = asked.get_json()
    assert case_json["status"] == "klarifikasi"
    last = case_json["timeline"][-1]
    assert last["kind"] == "status_changed" and last["from_status"] == "verifikasi"
    assert last["note"] == "Pertanyaan dikirim sebagai balasan"
    assert question not in json.dumps(case_json)  # the log is plaintext: never the question
    assert last["actor"]["id"] == api.account.id
    with demo.inst.sessions() as session:
        tenant = get_tenant(session, TENANT)
        case = session.get(Case, report.case_id)
        assert case is not None and case.status == CaseStatus.KLARIFIKASI
        ctx = Context(demo.inst, session, tenant)
        texts = [t for _, t in source_replies(ctx, report.secrets, case)]
    assert texts == [question]
    archived = change({"status": "diarsipkan", "note": "Pelapor tidak menjawab."})
    assert archived.status_code == 200
    assert archived.get_json()["timeline"][-1]["note"] == "Pelapor tidak menjawab."


# --- isolation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "intruder_tenant", "intruder_role"),
    [
        (TENANT, HUB, Role.PEMANTAU_KPK),
        (TENANT, HUB, Role.VERIFIKATOR),
        (HUB, TENANT, Role.ADMIN_INSTANSI),
    ],
)
def test_every_api_case_url_of_another_tenant_answers_404(
    demo: Demo, owner: str, intruder_tenant: str, intruder_role: Role
) -> None:
    report = make_report(demo, owner, files=(b"bukti",))
    intruder = api_login(demo, intruder_tenant, intruder_role)
    for method, rule in _case_rules(demo.app):
        url = _url(rule, report.case_id)
        response = _send(intruder, method, url)
        assert response.status_code == 404, (method, url)
        assert response.get_json() == {"error": "not_found", "message": "No such resource."}
    # Nothing changed and nothing was logged on the case.
    with demo.inst.sessions() as session:
        case = session.get(Case, report.case_id)
        assert case is not None
        assert case.status == CaseStatus.BARU and case.unread and case.replies == []
        kinds = {e.kind for e in session.query(Event).filter(Event.case_id == report.case_id)}
        assert kinds == {EventKind.CASE_CREATED}
    # And the list does not show it, even to a monitor when it was sent to KPK.
    listed = intruder.get("/api/v1/cases").get_json()
    assert report.case_id not in {case["id"] for case in listed["cases"]}


@pytest.mark.parametrize("huge", [str(2**63), "9" * 5000], ids=["2**63", "5000-digits"])
def test_an_id_no_row_can_have_answers_a_json_404_on_every_api_route(
    demo: Demo, huge: str
) -> None:
    api = api_login(demo, TENANT, Role.ADMIN_INSTANSI)
    rules = [(method, rule) for method, rule, args in _api_rules(demo.app) if args]
    assert len(rules) >= 5
    for method, rule in rules:
        response = _send(api, method, re.sub(r"<int:\w+>", huge, rule))
        assert response.status_code == 404, (method, rule)
        assert response.get_json() == {"error": "not_found", "message": "No such resource."}
        assert response.headers["Content-Security-Policy"] == SECURITY_HEADERS[
            "Content-Security-Policy"
        ]


def test_a_case_sent_to_kpk_is_in_the_monitors_api_read_only(demo: Demo) -> None:
    # KPK's copy (more in test_kpk_copy.py): listed and readable, never changed.
    report = make_report(demo, TENANT, to_kpk=True)
    monitor = api_login(demo, HUB, Role.PEMANTAU_KPK)
    detail = monitor.get(f"/api/v1/cases/{report.case_id}")
    assert detail.status_code == 200 and detail.get_json()["read_only"] is True
    listed = monitor.get("/api/v1/cases",
                         query_string={"number": report.registration_number}).get_json()
    assert [case["id"] for case in listed["cases"]] == [report.case_id]
    status = monitor.post(f"/api/v1/cases/{report.case_id}/status", json={"status": "verifikasi"})
    assert status.status_code == 404


def test_marks_are_set_logged_and_filtered_through_the_api(demo: Demo) -> None:
    report = make_report(demo)
    api = api_login(demo)
    url = f"/api/v1/cases/{report.case_id}/flags"
    for body in ({}, {"star": True}, {"starred": "yes"}, ["starred"], {"starred": 1}):
        response = api.post(url, json=body)
        assert response.status_code == 400, body
        assert response.get_json()["error"] == "bad_request", body
    done = api.post(url, json={"starred": True, "needs_reply": True})
    assert done.status_code == 200
    detail = done.get_json()
    assert detail["starred"] is True and detail["needs_reply"] is True
    kinds = [event["kind"] for event in detail["timeline"]]
    assert kinds[-2:] == ["starred", "needs_reply_set"]
    assert detail["timeline"][-1]["note"] is None
    assert detail["timeline"][-1]["actor"]["id"] == api.account.id
    # Unchanged marks log nothing.
    again = api.post(url, json={"starred": True}).get_json()
    assert len(again["timeline"]) == len(detail["timeline"])
    listed = api.get("/api/v1/cases?starred=1&needs_reply=true").get_json()
    assert report.case_id in {case["id"] for case in listed["cases"]}
    assert all(case["starred"] and case["needs_reply"] for case in listed["cases"])
    api.post(url, json={"starred": False})
    listed = api.get("/api/v1/cases?starred=1").get_json()
    assert report.case_id not in {case["id"] for case in listed["cases"]}
    assert api.get("/api/v1/cases?starred=maybe").status_code == 400


def test_cases_are_found_by_registration_number(demo: Demo) -> None:
    report = make_report(demo)
    elsewhere = make_report(demo, HUB)
    api = api_login(demo)
    digits = report.registration_number.rsplit("-", 1)[1]
    for query in (report.registration_number, report.registration_number.lower(), digits):
        found = api.get("/api/v1/cases", query_string={"number": query}).get_json()
        assert report.case_id in {case["id"] for case in found["cases"]}, query
    found = api.get("/api/v1/cases",
                    query_string={"number": elsewhere.registration_number}).get_json()
    assert found["cases"] == [] and found["total"] == 0


# --- the OpenAPI description ----------------------------------------------------------------


def test_the_openapi_file_describes_exactly_the_api_routes(demo: Demo) -> None:
    spec = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    documented = {
        (method.upper(), re.sub(r"\{(\w+)\}", r"<int:\1>", path))
        for path, operations in spec["paths"].items()
        for method in operations
        if method.upper() in METHODS
    }
    routed = {(method, rule) for method, rule, _ in _api_rules(demo.app)}
    assert documented == routed
    # Every operation documents its answers, and every protected one its 401.
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            if operation.get("security") != []:
                assert "401" in operation["responses"], (method, path)
            if "{case_id}" in path:
                assert "404" in operation["responses"], (method, path)
    # Every $ref resolves.
    text = OPENAPI.read_text(encoding="utf-8")
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node: Any = spec
        for part in ref.split("/"):
            node = node[part]


def test_the_classification_is_corrected_through_the_api(demo: Demo) -> None:
    api = api_login(demo, TENANT, Role.VERIFIKATOR)
    report = make_report(demo)
    url = f"/api/v1/cases/{report.case_id}/classification"
    changed = api.post(url, json={"category": "pemerasan", "mcp_area": "pengadaan_barang_jasa"})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    case = changed.get_json()["case"] if "case" in changed.get_json() else changed.get_json()
    assert (case["category"], case["mcp_area"]) == ("pemerasan", "pengadaan_barang_jasa")
    cleared = api.post(url, json={"category": "pemerasan", "mcp_area": None}).get_json()
    cleared = cleared.get("case", cleared)
    assert cleared["mcp_area"] is None
    for body, code in (({"category": "x"}, "bad_category"),
                       ({"category": "suap_menyuap", "mcp_area": "x"}, "bad_mcp_area"),
                       ({"category": "suap_menyuap", "extra": 1}, "bad_request"),
                       ({"category": 5}, "bad_request")):
        refused = api.post(url, json=body)
        assert refused.status_code == 400 and refused.get_json()["error"] == code, body
    with demo.inst.sessions() as session:
        stored = session.get(Case, report.case_id)
        assert (stored.category, stored.mcp_area) == ("pemerasan", None)
        assert session.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.case_id == report.case_id, Event.kind == EventKind.RECLASSIFIED)) == 2
