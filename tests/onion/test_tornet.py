"""The test Tor network's guard (tests/onion/tornet.py): it starts only where nothing it sends
can leave the machine. Checked in a network namespace of its own (util-linux's unshare), with a
real veth pair (iproute2) standing in for a network card and its cable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.onion.tornet import NAMESPACE_PREFIX

REPO = Path(__file__).resolve().parents[2]
_PROBE = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from tests.onion.tornet import in_private_namespace, unplugged
def ip(*args):
    subprocess.run(["ip", *args], check=True)
def settled():  # the carrier follows the peer's state; give the kernel a moment
    time.sleep(0.2)
    return unplugged()
seen = [in_private_namespace(), unplugged()]
ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
seen.append(settled())  # a card, down
ip("link", "set", "v0", "up")
seen.append(settled())  # up, but its peer is down: no carrier, a cable pulled out
ip("link", "set", "v1", "up")
seen.append(settled())  # connected: packets can leave
print(seen)
"""


def test_the_network_starts_only_where_nothing_can_leave() -> None:
    done = subprocess.run([*NAMESPACE_PREFIX, sys.executable, "-c", _PROBE, str(REPO)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # Only loopback; a card down; a card up without a carrier; a connected card.
    assert done.stdout.strip() == "[True, True, True, True, False]", done.stdout
