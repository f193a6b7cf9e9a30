"""Fixtures for the onion tests: an offline tor (unit tests); the e2e network is in
test_e2e_testnet.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import stem.control

from tests.onion.tornet import TorProcess, offline_tor
from tests.support import short_tempdir


@pytest.fixture(scope="module")
def tor_offline() -> Iterator[TorProcess]:
    """One real tor per test module, with DisableNetwork 1 (ADD_ONION answers at once)."""
    if shutil.which("tor") is None:
        pytest.fail("tor is needed for the onion tests: apt-get install tor")
    root = short_tempdir("tor-")
    try:
        with offline_tor(root) as proc:
            yield proc
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def controller(tor_offline: TorProcess) -> Iterator[stem.control.Controller]:
    """A control connection; every onion this test left behind is removed afterwards."""
    from wbs.onion import connect, published_ids

    with connect(f"127.0.0.1:{tor_offline.control_port}") as ctl:
        yield ctl
        for service_id in published_ids(ctl):
            ctl.remove_ephemeral_hidden_service(service_id)
