"""The JSON API with the database locked past the busy timeout: a JSON 503, then it works."""

from __future__ import annotations

import dataclasses
import sqlite3

from iface_common.app import SECURITY_HEADERS
from journalist_iface import create_app
from tests.journalist_iface.conftest import SETTINGS, Demo, make_account, make_report
from wbs.instance import Instance


def test_a_locked_database_answers_503_in_json_and_the_next_request_works(demo: Demo) -> None:
    report = make_report(demo)
    # The same instance with a 0.3 s busy timeout, served as in production (error pages on).
    url = f"{demo.inst.config.database_url}?timeout=0.3"
    with Instance.open(dataclasses.replace(demo.inst.config, database_url=url)) as inst:
        client = create_app(inst, auth_settings=SETTINGS).test_client()
        account = make_account(demo)
        login = client.post("/api/v1/token", json={
            "username": account.username, "password": account.password, "totp": account.code()})
        assert login.status_code == 201
        headers = {"Authorization": f"Bearer {login.get_json()['token']}"}
        change = {"status": "verifikasi", "note": "diperiksa"}
        holder = sqlite3.connect(demo.inst.config.database_url.removeprefix("sqlite:///"))
        try:
            holder.execute("BEGIN IMMEDIATE")
            busy = client.post(f"/api/v1/cases/{report.case_id}/status", json=change,
                               headers=headers)
        finally:
            holder.rollback()
            holder.close()
        assert busy.status_code == 503
        assert busy.is_json and busy.get_json()["error"] == "busy"
        assert busy.headers["Retry-After"] == "30"
        for name, value in SECURITY_HEADERS.items():
            assert busy.headers.get(name) == value, name
        # Nothing was half done: the status is unchanged, and the same request now works.
        case = client.get(f"/api/v1/cases/{report.case_id}", headers=headers).get_json()
        assert case["status"] == "baru"
        done = client.post(f"/api/v1/cases/{report.case_id}/status", json=change,
                           headers=headers)
        assert done.status_code == 200, done.get_data(as_text=True)
