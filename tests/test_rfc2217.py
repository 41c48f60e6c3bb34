"""rfc2217:// (and telnet://) against the real ser2net (4.x, YAML config) serving one end of a
socat pty pair.

    connector --RFC 2217 over TCP--> ser2net --serialdev--> pty b <==socat==> pty a (the "machine")

What a pty pair cannot show: a BREAK. Linux ptys have no break_ctl, so the TIOCSBRK ser2net
issues on pty b succeeds and vanishes (test_serial_connector proves that kernel fact). What is
provable, and asserted here: the connector's RFC 2217 SET-CONTROL BREAK-ON is acknowledged by
ser2net, and ser2net turns it into TIOCSBRK on the device, followed ~0.25 s later by TIOCCBRK,
as seen by strace on ser2net's own system calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import termios
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventtap import EventTap, open_raw, pace, read_exactly, run, tcp_listening
from labtools import Processes, free_tcp_port, require_commands, wait_for, wait_for_path

from connectors import open_connector
from connectors.base import Backoff, StateChange
from connectors.telnet import BINARY, ECHO, SGA, TelnetConnector

FAST = Backoff(first=0.05, ceiling=0.2)
# pyserial 3.5's RFC 2217 client names its thread with the deprecated setDaemon/setName.
pytestmark = pytest.mark.filterwarnings(
    "ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning"
)

CONFIG = """\
%YAML 1.1
---
connection: &console
  accepter: {accepter},tcp,127.0.0.1,{port}
  connector: serialdev,{device},115200n81,local
  options:
    kickolduser: true
"""


@dataclass
class Lab:
    processes: Processes
    commands: dict[str, str]
    tmp: Path
    port: int
    far: Path  # pty a: the "machine" end, opened by the test
    device: Path  # pty b: the serial device ser2net serves
    ser2net: subprocess.Popen[bytes] | None = None
    trace: Path | None = None

    @property
    def url(self) -> str:
        return f"rfc2217://127.0.0.1:{self.port}"

    def start_ser2net(self, *, strace: bool = False, accepter: str = "telnet(rfc2217)") -> None:
        config = self.tmp / "ser2net.yaml"
        config.write_text(CONFIG.format(accepter=accepter, port=self.port, device=self.device))
        # -n: foreground; -u: no UUCP lock files in /var/lock; -P: pid file in our tmp.
        argv = [self.commands["ser2net"], "-n", "-u", "-c", str(config)]
        argv += ["-P", str(self.tmp / "ser2net.pid")]
        if strace:
            # ser2net's own system calls, with fds resolved to paths (-y) and times (-tt).
            self.trace = self.tmp / "ser2net.strace"
            tracer = [self.commands["strace"], "-f", "-tt", "-y", "-e", "trace=ioctl"]
            argv = [*tracer, "-o", str(self.trace), *argv]
        log = (self.tmp / "ser2net.log").open("ab")
        self.ser2net = self.processes.start(argv, stdout=log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: tcp_listening(self.port), 10):
            raise AssertionError(
                f"ser2net did not listen: {(self.tmp / 'ser2net.log').read_text()}"
            )

    def stop_ser2net(self) -> None:
        assert self.ser2net is not None
        self.processes.stop(self.ser2net)
        assert wait_for(lambda: not tcp_listening(self.port), 5)


@pytest.fixture
def lab(tmp_path: Path, processes: Processes) -> Lab:
    commands = require_commands("socat", "ser2net")
    far, device = tmp_path / "a", tmp_path / "b"
    links = [f"pty,raw,echo=0,link={far}", f"pty,raw,echo=0,link={device}"]
    processes.start([commands["socat"], *links])
    assert wait_for_path(far, 5) and wait_for_path(device, 5)
    return Lab(processes, commands, tmp_path, free_tcp_port(), far, device)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def device_breaks(trace: Path, device: str) -> list[tuple[float, str]]:
    """(time of day in s, request) of every break ioctl ser2net made on `device`: TIOCSBRK /
    TIOCCBRK (break on/off, RFC 2217) and TCSBRK (tcsendbreak, a timed break)."""
    pattern = re.compile(
        rf"(\d+):(\d+):(\d+\.\d+) ioctl\(\d+<{re.escape(device)}>, (TIOC[SC]BRK|TCSBRK)\b"
    )
    found = []
    for m in pattern.finditer(trace.read_text()):
        hours, minutes, seconds = int(m.group(1)), int(m.group(2)), float(m.group(3))
        found.append((hours * 3600 + minutes * 60 + seconds, m.group(4)))
    return found


@pytest.mark.lab
def test_data_flows_both_ways_byte_identical(lab: Lab, qemu_corpus: Path) -> None:
    lab.start_ser2net()
    # A real console capture plus every byte value: 0xFF is Telnet's IAC and must be escaped
    # by one side and unescaped by the other, both ways.
    inbound = (qemu_corpus / "oops_null_panic.log").read_bytes()[:16384] + bytes(range(256)) * 8
    outbound = b"root\r" + bytes(range(256)) * 4 + b"\xff\xff\xfe\r"

    async def scenario() -> bytes:
        conn = open_connector(lab.url)
        await conn.open()
        tap = EventTap(conn)
        far = open_raw(lab.far)
        try:
            await asyncio.to_thread(pace, far, inbound, 100_000)
            got = await tap.wait_bytes(len(inbound), 10)
            await conn.write(outbound)
            echoed = await asyncio.to_thread(read_exactly, far, len(outbound), 5)
            assert echoed == outbound
        finally:
            os.close(far)
            await tap.close()
        assert tap.kinds() == ["connected", "closed"]
        return got

    assert sha(run(scenario())) == sha(inbound)


@pytest.mark.lab
def test_line_settings_are_applied_by_ser2net_to_the_device(lab: Lab) -> None:
    lab.start_ser2net()

    async def scenario() -> list[Any]:
        # pyserial waits for ser2net to acknowledge each of these values, or the open fails.
        conn = open_connector(f"{lab.url}?baud=9600&stop=2&bits=7&parity=E")
        await conn.open()
        try:
            fd = os.open(lab.device, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                return termios.tcgetattr(fd)
            finally:
                os.close(fd)
        finally:
            await conn.close()

    _, _, cflag, _, ispeed, ospeed, _ = run(scenario())
    # The config says 115200n81: these values came over RFC 2217 (SET-BAUDRATE, SET-STOPSIZE).
    assert ispeed == ospeed == termios.B9600
    assert cflag & termios.CSTOPB
    # 7E was acknowledged and set, but a pty forces CS8 and no parity (pty_set_termios).
    assert cflag & termios.CSIZE == termios.CS8


@pytest.mark.lab
def test_break_is_acknowledged_and_ser2net_breaks_the_device(lab: Lab) -> None:
    lab.commands.update(require_commands("strace"))
    lab.start_ser2net(strace=True)
    device = os.path.realpath(lab.device)  # /dev/pts/N as strace -y shows it

    async def scenario() -> None:
        conn = open_connector(lab.url)
        await conn.open()
        tap = EventTap(conn)
        far = open_raw(lab.far)
        try:
            # send_break returns only after ser2net acknowledged SET-CONTROL BREAK-ON
            # (pyserial raises "remote rejected" or times out otherwise).
            await conn.send_break()
            os.write(far, b"after the break\r\n")  # and the console still works
            assert await tap.wait_bytes(17, 5) == b"after the break\r\n"
        finally:
            os.close(far)
            await tap.close()

    run(scenario())
    trace = lab.trace
    assert trace is not None
    assert wait_for(lambda: "TIOCSBRK" in {k for _, k in device_breaks(trace, device)}, 5), (
        f"no TIOCSBRK on {device} in ser2net's trace"
    )
    events = device_breaks(trace, device)
    on = next(i for i, (_, kind) in enumerate(events) if kind == "TIOCSBRK")
    off = next((i for i in range(on + 1, len(events)) if events[i][1] == "TIOCCBRK"), None)
    assert off is not None, "ser2net never cleared the break"
    assert 0.2 <= events[off][0] - events[on][0] < 1.0  # held for the BREAK's 0.25 s


@pytest.mark.lab
def test_ser2net_restart_reconnects_with_a_gap(lab: Lab) -> None:
    lab.start_ser2net()

    async def scenario() -> EventTap:
        conn = open_connector(lab.url, backoff=FAST)
        await conn.open()
        tap = EventTap(conn)
        try:
            lab.stop_ser2net()  # the console server reboots
            await tap.wait_kind("disconnected", 5)
            lab.start_ser2net()
            await tap.wait(lambda: tap.kinds()[-1:] == ["connected"], 10, "reconnected")
            far = open_raw(lab.far)
            try:
                os.write(far, b"login: ")
                assert await tap.wait_bytes(7, 5) == b"login: "
            finally:
                os.close(far)
        finally:
            await tap.close()
        return tap

    tap = run(scenario())
    # A "reconnecting" (why an attempt failed) if one came before ser2net was back.
    kinds = [k for k in tap.kinds() if k != "reconnecting"]
    assert kinds == ["connected", "disconnected", "gap", "connected", "closed"]
    lost = next(e for e in tap.events if isinstance(e, StateChange) and e.state == "disconnected")
    assert lost.detail == f"{lab.url}: connection closed by the server"


@pytest.mark.lab
def test_nothing_waiting_at_the_server_is_discarded_on_connect(lab: Lab) -> None:
    lab.start_ser2net()
    # The panic scrolled out while nobody was connected: it waits in the device's input queue.
    far = open_raw(lab.far)
    os.write(far, b"Kernel panic - not syncing: Fatal exception\r\n")

    async def scenario() -> bytes:
        conn = open_connector(lab.url)
        await conn.open()
        tap = EventTap(conn)
        try:
            return await tap.wait_bytes(45, 5)
        finally:
            await tap.close()

    try:
        assert run(scenario()) == b"Kernel panic - not syncing: Fatal exception\r\n"
    finally:
        os.close(far)


@pytest.mark.lab
def test_telnet_url_through_ser2net_negotiates_and_breaks_the_device(lab: Lab) -> None:
    """telnet:// against ser2net's plain Telnet accepter: the real negotiation, IAC escaping
    both ways, and IAC BRK, which ser2net turns into tcsendbreak on the device."""
    lab.commands.update(require_commands("strace"))
    lab.start_ser2net(strace=True, accepter="telnet")
    device = os.path.realpath(lab.device)
    inbound = b"login: \xff\xfe\r\n" + bytes(range(256))

    async def scenario() -> tuple[set[int], set[int]]:
        conn = open_connector(f"telnet://127.0.0.1:{lab.port}")
        assert isinstance(conn, TelnetConnector)
        await conn.open()
        tap = EventTap(conn)
        far = open_raw(lab.far)
        try:
            os.write(far, inbound)
            assert await tap.wait_bytes(len(inbound), 5) == inbound
            await conn.write(b"root\r\xff")
            echoed = await asyncio.to_thread(read_exactly, far, 6, 5)
            assert echoed == b"root\r\xff"
            await conn.send_break()
            return set(conn.codec.local), set(conn.codec.remote)
        finally:
            os.close(far)
            await tap.close()

    local, remote = run(scenario())
    assert local == {BINARY, SGA} and remote == {BINARY, ECHO, SGA}
    trace = lab.trace
    assert trace is not None
    assert wait_for(lambda: "TCSBRK" in {k for _, k in device_breaks(trace, device)}, 5), (
        f"no tcsendbreak on {device} in ser2net's trace"
    )
