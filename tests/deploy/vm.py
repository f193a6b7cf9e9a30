"""A Debian 12 server that really boots: Debian's kernel and systemd as PID 1, in qemu.

:func:`build_disk` turns a root file system (an mmdebstrap tarball with a kernel, systemd and
qemu-guest-agent) into an ext4 disk image, with no mount: ``mke2fs -d`` copies the folder in.
:class:`Guest` boots it (KVM where /dev/kvm can be opened, else qemu's software emulation, much
slower) and runs commands in it through the QEMU guest agent, which speaks over a virtio serial
port: no network, no SSH, so the server's own firewall (which refuses every new connection from
outside) is never in the way, and nothing is opened on the host but two unix sockets in the
test's folder. The guest's only network is qemu's user-mode network (NAT through the host's
sockets: the package mirror and PyPI, as a new server has); :meth:`Guest.link` cuts it.

Every qemu process is started here and killed here (``close``), also when a step fails, and gets
``PR_SET_PDEATHSIG``: it dies with the test run.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QEMU = "qemu-system-x86_64"
DISK_SIZE = "8G"
MEMORY_MIB = 2048


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def accelerator() -> str:
    """qemu's software emulation (``tcg``) unless PELUIT_VM_ACCEL says ``kvm``. The test
    machines have a /dev/kvm that opens but does not run a guest (they are virtual machines
    themselves, without nested virtualisation): the guest's kernel stops after its first line."""
    return os.environ.get("PELUIT_VM_ACCEL", "tcg")


def build_disk(root: Path, image: Path) -> tuple[Path, Path]:
    """An ext4 image of ``root`` at ``image``; the kernel and initrd copied beside it (qemu
    boots them directly: no boot loader to install). Returns (kernel, initrd)."""
    boot = root / "boot"
    kernel = sorted(boot.glob("vmlinuz-*"))[-1]
    initrd = sorted(boot.glob("initrd.img-*"))[-1]
    kernel_copy = image.with_name("vmlinuz")
    initrd_copy = image.with_name("initrd.img")
    shutil.copy2(kernel, kernel_copy)
    shutil.copy2(initrd, initrd_copy)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "peluit-root", "-d", str(root),
                    str(image), DISK_SIZE], check=True, timeout=600)
    return kernel_copy, initrd_copy


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


class GuestError(RuntimeError):
    pass


class Guest:
    """One booted VM. ``run`` executes a shell script as root in it and returns its output."""

    def __init__(self, image: Path, kernel: Path, initrd: Path, workdir: Path) -> None:
        self.workdir = workdir
        self.console = workdir / "console.log"
        self.accel = accelerator()
        self._qga_path = workdir / "qga.sock"
        self._qmp_path = workdir / "qmp.sock"
        self._qga: socket.socket | None = None
        self._qga_buffer = b""
        # Software emulation's default CPU (qemu64) lacks what numpy's wheels need (x86-64-v2:
        # SSE4.2, POPCNT): "max" emulates every feature qemu knows.
        cpu = ["-cpu", "host" if self.accel == "kvm" else "max"]
        with open(workdir / "qemu.log", "wb") as qemu_log:
            self.process = self._start(cpu, image, kernel, initrd, qemu_log)

    def _start(self, cpu: list[str], image: Path, kernel: Path, initrd: Path,
               qemu_log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [QEMU, "-accel", self.accel, *cpu, "-smp", "2", "-m", str(MEMORY_MIB),
             "-nodefaults", "-display", "none", "-no-user-config",
             "-kernel", str(kernel), "-initrd", str(initrd),
             "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1",
             "-drive", f"file={image},if=virtio,format=raw,cache=unsafe",
             "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
             "-device", "virtio-rng-pci",
             "-serial", f"file:{self.console}",
             "-chardev", f"socket,path={self._qga_path},server=on,wait=off,id=qga0",
             "-device", "virtio-serial",
             "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
             "-qmp", f"unix:{self._qmp_path},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=qemu_log, preexec_fn=_die_with_parent,
        )

    # --- the guest agent (JSON lines over the virtio serial port) ------------------------------

    def _qga_connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self._qga_path))
                # Generous: an emulated guest under load may take a while to answer.
                sock.settimeout(60)
                self._qga, self._qga_buffer = sock, b""
                # guest-sync with a fresh id: whatever an earlier, interrupted exchange (or a
                # previous boot) left in the channel is read past until its answer.
                sync_id = int.from_bytes(os.urandom(4), "big")
                self._send({"execute": "guest-sync", "arguments": {"id": sync_id}})
                while self._receive().get("return") != sync_id:
                    pass
                return
            except (OSError, TimeoutError, ValueError):
                self._qga_close()
                if time.monotonic() > deadline:
                    raise GuestError(f"no answer from the guest agent in {timeout:.0f} s; "
                                     f"console:\n{self.console_tail()}") from None
                time.sleep(1)

    def _qga_close(self) -> None:
        if self._qga is not None:
            self._qga.close()
            self._qga = None

    def _send(self, message: dict[str, Any]) -> None:
        assert self._qga is not None
        self._qga.sendall(json.dumps(message).encode() + b"\n")

    def _receive(self) -> dict[str, Any]:
        assert self._qga is not None
        while b"\n" not in self._qga_buffer:
            chunk = self._qga.recv(65536)
            if not chunk:
                raise OSError("the guest agent closed the channel")
            self._qga_buffer += chunk
        line, self._qga_buffer = self._qga_buffer.split(b"\n", 1)
        # A byte 0xff may precede an answer after a guest-sync-delimited; not used here.
        answer: dict[str, Any] = json.loads(line.lstrip(b"\xff") or b"{}")
        return answer

    def _call(self, command: str, arguments: dict[str, Any]) -> Any:
        try:
            self._send({"execute": command, "arguments": arguments})
            answer = self._receive()
        except (OSError, ValueError):
            # A late answer would otherwise be read as the next call's: reconnect (and sync)
            # on the next call instead.
            self._qga_close()
            raise
        if "error" in answer:
            raise GuestError(f"{command}: {answer['error']}")
        return answer.get("return")

    def wait_for_agent(self, timeout: float) -> None:
        self._qga_close()
        self._qga_connect(timeout)

    def run(self, script: str, *, timeout: float = 600, check: bool = False) -> Done:
        """``script`` run by ``sh -c`` as root, with a plain PATH and the C.UTF-8 locale."""
        if self._qga is None:
            self._qga_connect(60)
        env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG=C.UTF-8", "HOME=/root"]
        pid = self._call("guest-exec", {"path": "/bin/sh", "arg": ["-c", script], "env": env,
                                        "capture-output": True})["pid"]
        deadline = time.monotonic() + timeout
        while True:
            status = self._call("guest-exec-status", {"pid": pid})
            if status["exited"]:
                break
            if time.monotonic() > deadline:
                self.run(f"kill -9 {pid}", timeout=30)
                raise GuestError(f"timed out after {timeout:.0f} s: {script[:200]}")
            time.sleep(0.5)
        done = Done(status.get("exitcode", -status.get("signal", 0) or -1),
                    base64.b64decode(status.get("out-data", "")).decode(errors="replace"),
                    base64.b64decode(status.get("err-data", "")).decode(errors="replace"))
        if check and done.returncode != 0:
            raise GuestError(f"exit {done.returncode}: {script[:200]}\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def write(self, path: str, content: str, mode: str = "0644") -> None:
        data = base64.b64encode(content.encode()).decode()
        self.run(f"echo {data} | base64 -d > {path} && chmod {mode} {path}", check=True)

    # --- the machine (QMP) ----------------------------------------------------------------------

    def _qmp(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(self._qmp_path))
            sock.settimeout(10)
            stream = sock.makefile("rwb")
            json.loads(stream.readline())  # the greeting
            for message in ({"execute": "qmp_capabilities"},
                            {"execute": command, "arguments": arguments or {}}):
                stream.write(json.dumps(message).encode() + b"\n")
                stream.flush()
                while True:
                    answer = json.loads(stream.readline())
                    if "event" not in answer:
                        break
                if "error" in answer:
                    raise GuestError(f"{command}: {answer['error']}")
            return answer.get("return")

    def link(self, up: bool) -> None:
        """Plug or unplug the guest's network cable (its only way out)."""
        self._qmp("set_link", {"name": "net0", "up": up})

    def reboot(self, timeout: float) -> None:
        """``systemctl reboot`` in the guest; returns once its agent answers again."""
        before = self.boot_id()
        # The agent may be stopped before it reports the command's end.
        with contextlib.suppress(GuestError, OSError, TimeoutError, ValueError):
            self.run("systemctl reboot", timeout=30)
        self._qga_close()
        deadline = time.monotonic() + timeout
        # The agent of the old boot may still answer for a moment: wait for a new boot id.
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                self.wait_for_agent(max(1.0, deadline - time.monotonic()))
                if self.boot_id() != before:
                    return
            except (GuestError, OSError, TimeoutError):
                pass
            self._qga_close()
        raise GuestError(f"no new boot in {timeout:.0f} s; console:\n{self.console_tail()}")

    def boot_id(self) -> str:
        return self.run("cat /proc/sys/kernel/random/boot_id", timeout=30,
                        check=True).stdout.strip()

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise GuestError(f"qemu exited ({self.process.returncode}); console:\n"
                             f"{self.console_tail()}\n{(self.workdir / 'qemu.log').read_text()}")

    def console_tail(self, chars: int = 4000) -> str:
        try:
            return self.console.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        self._qga_close()
        if self.process.poll() is None:
            with contextlib.suppress(OSError, GuestError, ValueError):
                self._qmp("quit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
