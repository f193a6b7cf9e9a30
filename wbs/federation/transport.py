"""How a member reaches its hub: HTTP to the hub's federation onion through tor's SOCKS port.

Never over the open internet: the only URL built here is an ``.onion`` one, and the SOCKS
proxy resolves it (``socks5h``: the name goes to tor, never to a DNS resolver). The client
key for the hub's onion is given to tor first (:func:`wbs.onion.load_hub_client_auth`).
A direct URL is for the tests on loopback only (``peluit federation sync --url``).
"""

from __future__ import annotations

import json
import os

import requests

from wbs.federation.exchange import Post, SyncError

ENDPOINT = "/federation/v1/exchange"
# Where tor's SOCKS port is when TOR_SOCKS is not set (Debian's tor@default).
SOCKS_ENV = "TOR_SOCKS"
DEFAULT_SOCKS = "127.0.0.1:9050"
# Onion circuits are slow to build the first time (tens of seconds on a busy network).
TIMEOUT_SECONDS = 120


def socks_address() -> str:
    return os.environ.get(SOCKS_ENV) or DEFAULT_SOCKS


def poster(url: str, *, socks: str | None = None, timeout: float = TIMEOUT_SECONDS) -> Post:
    """A :data:`Post` to ``url``; through tor's SOCKS port when ``socks`` is given."""
    proxies = {"http": f"socks5h://{socks}"} if socks else None

    def post(sealed: bytes) -> bytes:
        try:
            response = requests.post(
                url,
                data=sealed,
                headers={"Content-Type": "application/json"},
                proxies=proxies,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise SyncError(f"the hub cannot be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            try:
                reason = str(json.loads(response.content)["error"])
            except (ValueError, KeyError, TypeError):
                reason = f"HTTP {response.status_code}"
            raise SyncError(f"the hub refused the request: {reason}")
        return response.content

    return post


def onion_poster(hub_onion: str, socks: str | None = None) -> Post:
    if not hub_onion.endswith(".onion"):
        raise SyncError(f"{hub_onion} is not an onion address")
    return poster(f"http://{hub_onion}{ENDPOINT}", socks=socks or socks_address())
