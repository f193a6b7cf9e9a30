"""A private Tor network inside the booted server of test_booted.py, for its installed tor.

Run in the guest by Debian's python3, from the checkout the test copied in (standard library
only): ``cd /root/peluit && python3 -m tests.deploy.guest_tornet WORKDIR``, under
``systemd-run`` so that it outlives the guest agent's command. It starts three directory
authorities, three relays and a client on 127.0.0.1 (tests/onion/tornet.py), writes
``WORKDIR/network.json`` (the lines the server's torrc needs to join the network, the client's
SOCKS and control ports and its cookie file), and keeps them running until it is stopped
(SIGTERM from ``systemctl stop``), when it stops every tor by its PID.

It refuses to start unless every interface but loopback has no carrier: the test pulls the
virtual machine's cable out first, so nothing of this network can leave the machine.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from tests.onion.tornet import COMMON, TestNetwork


def main(workdir: Path) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    workdir.mkdir(parents=True, exist_ok=True)
    network = TestNetwork(workdir / "net")
    try:
        # Emulated and busy (nine tors, the services): a consensus valid for a minute, not
        # 20 s, so that a late vote leaves no tor without one (the doctor's clock check
        # compares with its validity).
        network.configure(client_auth_dir=workdir / "client-auth", service=False,
                          intervals_valid=6)
        network.start()
        client = network.client
        assert client is not None
        state = {
            "torrc": [*COMMON, *network.dir_lines],
            "socks_port": client.socks_port,
            "control_port": client.control_port,
            "control_cookie": str(client.data_dir / "control_auth_cookie"),
            "client_log": str(client.log),
        }
        ready = workdir / "network.json.new"
        ready.write_text(json.dumps(state))
        ready.rename(workdir / "network.json")
        while True:
            for proc in network.everything:
                if proc.process is not None and proc.process.poll() is not None:
                    print(f"tor {proc.name} exited:\n{proc.log_text()[-2000:]}", file=sys.stderr)
                    return 1
            time.sleep(2)
    finally:
        network.stop_all()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
