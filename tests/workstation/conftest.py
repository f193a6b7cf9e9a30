"""Fixtures for the workstation: a short-path data folder of its own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import short_tempdir
from tests.workstation.helpers import kill_agent


@pytest.fixture
def ws_home() -> Iterator[Path]:
    # Short: gpg-agent's socket lives in <home>/gnupg.
    home = short_tempdir("wsh-")
    yield home
    kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)
