"""`crashcart watch netconsole://...`: one listener, one recorded console per sending host."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from labtools import free_udp_port


def _send_lines(sock: socket.socket, port: int, data: bytes) -> None:
    # Plain netconsole: one datagram per printk line, as the kernel sends them.
    for line in data.splitlines(keepends=True):
        sock.sendto(line, ("127.0.0.1", port))
        time.sleep(0.0005)


def test_two_senders_are_two_consoles_and_the_crash_is_attributed(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    port = free_udp_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crashcart",
            "watch",
            f"netconsole://127.0.0.1:{port}",
            "--record",
            str(tmp_path),
            "--json",
            "--exit-on-crash",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    crash_port = 0
    crashing = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        crashing.bind(("127.0.0.1", 0))
        quiet.bind(("127.0.0.1", 0))
        crash_port = crashing.getsockname()[1]
        time.sleep(1.0)  # the listener binds after the interpreter starts
        quiet.sendto(b"[    1.000000] e1000: eth0 NIC Link is Up 1000 Mbps\n", ("127.0.0.1", port))
        oops = (qemu_corpus / "oops_null_panic.log").read_bytes()
        kernel_lines = b"".join(
            line for line in oops.splitlines(keepends=True) if line.startswith(b"[")
        )
        _send_lines(crashing, port, kernel_lines)
        out, err = proc.communicate(timeout=60)
    finally:
        crashing.close()
        quiet.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err
    first = json.loads(out.splitlines()[0])
    assert first["kind"] == "null_deref" and first["function"] == "crashme_null_deref"
    assert first["console"].startswith("127.0.0.1-")
    assert first["console"] == f"127.0.0.1-{crash_port}"
    consoles = sorted(p.name for p in tmp_path.iterdir() if p.name != "incidents")
    assert len(consoles) == 2, consoles
    quiet_logs = [
        p for c in consoles for p in (tmp_path / c).glob("*.log") if b"NIC Link" in p.read_bytes()
    ]
    assert len(quiet_logs) == 1 and b"NULL pointer" not in quiet_logs[0].read_bytes()
