"""The JSON API's fuzz runs on the investigators' demo instance (tests/journalist_iface)."""

from __future__ import annotations

from tests.journalist_iface.conftest import demo

__all__ = ["demo"]
