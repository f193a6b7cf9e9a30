"""The reliability harness: property tests on a real instance (real gpg, SQLite, store).

The instance is the source interface's module-scoped demo (tests/source_iface/conftest.py): its
key generation and migrations are the slow part, so each test module builds it once and every
Hypothesis example runs against it, checking the store and the database after each one.
"""

from __future__ import annotations

from tests.source_iface.conftest import demo

__all__ = ["demo"]
