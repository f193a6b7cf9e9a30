"""What is kept only until it is no longer needed, and the one place that forgets it.

Run at every start of the production server (``deploy/gunicorn.conf.py``) and of ``peluit
run``, and daily by ``peluit purge`` (``deploy/systemd/peluit-purge.timer``): a server that is
never restarted must forget as surely as one that is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from wbs.accounts import purge_expired_sessions
from wbs.source_sessions import purge_expired
from wbs.sources import purge_abandoned_sources


@dataclass(frozen=True)
class Purged:
    source_sessions: int
    investigator_sessions: int
    abandoned_sources: int


def purge(session: Session) -> Purged:
    """Forget pelapor sessions whose day is over, expired investigator sessions, and codenames
    that never sent a report. Commits."""
    return Purged(
        source_sessions=purge_expired(session),
        investigator_sessions=purge_expired_sessions(session),
        abandoned_sources=purge_abandoned_sources(session),
    )
