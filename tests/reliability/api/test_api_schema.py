"""The JSON API fuzzed against docs/openapi.json (Schemathesis): no 500, every answer as documented.

Every operation of the published schema gets generated requests, valid ones and invalid ones
(wrong types, missing fields, huge numbers), sent to the investigators' Flask app as a real
investigator of the demo tenant with a real bearer token. Each answer must not be a server
error and must match the schema: a documented status code, content type, headers and body.
Case ids are small integers, so the fixture's cases (and another tenant's) are hit as well as
missing ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# The investigators' demo instance (this module's `demo`, instead of the reporters' one).
# The investigators' demo instance is this module's `demo` (not the reporters' one that
# tests/reliability/conftest.py provides).
from tests.journalist_iface.conftest import HUB, Demo, make_report
from tests.journalist_iface.test_api import api_login

OPENAPI = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

SCHEMA = schemathesis.openapi.from_path(OPENAPI)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]



class Investigator:
    """A bearer token of a real investigator; a new login when the fuzz logged it out."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.token = api_login(demo).token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def refresh_if_needed(self, method: str, path: str, status: int) -> None:
        if method == "DELETE" and path == "/api/v1/token" and status == 204:
            self.token = api_login(self.demo).token


@pytest.fixture(scope="module")
def investigator(demo: Demo) -> Investigator:
    # Cases to find: two of this tenant (one with files) and one of another tenant.
    make_report(demo, files=(b"isi bukti",))
    make_report(demo)
    make_report(demo, HUB)
    return Investigator(demo)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_every_answer_matches_the_published_schema(  # type: ignore[no-untyped-def]
    demo: Demo, investigator: Investigator, operation
) -> None:
    strategy = st.one_of(operation.as_strategy(), operation.as_strategy(
        generation_mode=schemathesis.GenerationMode.NEGATIVE))

    @settings(max_examples=40, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case) -> None:  # type: ignore[no-untyped-def]
        # The token replaces whatever Authorization the generator made up.
        login = operation.method.upper() == "POST" and operation.path == "/api/v1/token"
        headers = {} if login else investigator.headers()
        response = case.call(headers=headers, app=demo.app)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        finally:
            investigator.refresh_if_needed(operation.method.upper(), operation.path,
                                           response.status_code)

    fuzz()
