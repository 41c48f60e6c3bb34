"""The serial connector against real ptys (socat), a real TCP peer, and real failures.

A socat pty pair stands in for the null-modem cable: the test writes a real QEMU console capture
into one end at 115200 baud and the connector reads the other end through `serial://`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pty
import select
import subprocess
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventtap import (
    EventTap,
    open_raw,
    pace,
    pace_in_thread,
    read_exactly,
    run,
    tcp_listening,
)
from labtools import Processes, free_tcp_port, require_commands, wait_for, wait_for_path

from connectors import open_connector
from connectors.base import Backoff, ConnectorError, Gap, StateChange, Unsupported
from connectors.serial import LocalSerialConnector, parse_line_settings

BAUD_115200 = 115200 / 10  # bytes per second: 8N1 is 10 bits on the wire per byte
FAST = Backoff(first=0.05, ceiling=0.2)


@dataclass
class PtyPair:
    """`socat pty,link=a pty,link=b`: bytes written to a come out of b and back."""

    processes: Processes
    socat: str
    a: Path
    b: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        links = [f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"]
        self.proc = self.processes.start([self.socat, "-d", "-d", *links])
        assert wait_for_path(self.a, 5) and wait_for_path(self.b, 5), "socat made no ptys"

    def stop(self) -> None:
        assert self.proc is not None
        self.processes.stop(self.proc)  # SIGTERM: socat removes its links on the way out
        assert wait_for(lambda: not self.a.is_symlink() and not self.b.is_symlink(), 5)


@pytest.fixture
def ptys(tmp_path: Path, processes: Processes) -> PtyPair:
    socat = require_commands("socat")["socat"]
    pair = PtyPair(processes, socat, tmp_path / "a", tmp_path / "b")
    pair.start()
    return pair


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- options (no peer needed) ----------------------------------------------------------------
def test_line_settings_parsed_and_defaulted() -> None:
    s = parse_line_settings(
        {"baud": "9600", "parity": "e", "bits": "7", "stop": "2", "rtscts": "1"}, "x"
    )
    assert (s.baud, s.parity, s.bits, s.stop, s.rtscts, s.xonxoff) == (
        9600,
        "E",
        7,
        "2",
        True,
        False,
    )
    d = parse_line_settings({}, "x")
    assert (d.baud, d.parity, d.bits, d.stop, d.rtscts, d.xonxoff) == (
        115200,
        "N",
        8,
        "1",
        False,
        False,
    )
    assert parse_line_settings({"stop": "1.5"}, "x").stop == "1.5"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("baud=fast", "baud must be a positive whole number"),
        ("baud=0", "baud must be a positive whole number"),
        ("parity=X", "parity must be one of N, E, O, M, S"),
        ("bits=9", "bits must be 5, 6, 7 or 8"),
        ("stop=3", "stop must be 1, 1.5 or 2"),
        ("rtscts=yes", "rtscts must be 0 or 1"),
        ("xonxoff=2", "xonxoff must be 0 or 1"),
        ("speed=9600", "unknown option 'speed'"),
    ],
)
def test_bad_options_are_one_clear_line(query: str, message: str) -> None:
    with pytest.raises(ConnectorError) as err:
        open_connector(f"serial:///dev/ttyS0?{query}")
    assert message in str(err.value)
    assert str(err.value).startswith("/dev/ttyS0: ")
    assert "\n" not in str(err.value)


def test_keyword_options_override_the_url_and_socket_takes_none() -> None:
    # Keywords meant for other transports (an IPMI password, a replay speed) are ignored.
    conn = open_connector("serial:///dev/ttyS0?baud=9600", baud=57600, backoff=FAST, speed=2)
    assert isinstance(conn, LocalSerialConnector)
    assert conn.settings.baud == 57600 and conn.backoff is FAST
    with pytest.raises(ConnectorError, match="bits must be 5, 6, 7 or 8"):
        open_connector("serial:///dev/ttyS0", bits=9)
    with pytest.raises(ConnectorError, match="raw TCP port carries no line settings"):
        open_connector("socket://127.0.0.1:7000?baud=9600")


# -- real ptys -------------------------------------------------------------------------------
@pytest.mark.lab
def test_capture_paced_at_115200_arrives_byte_identical(ptys: PtyPair, qemu_corpus: Path) -> None:
    capture = (qemu_corpus / "oops_null_panic.log").read_bytes()
    assert len(capture) > 20_000  # a whole boot and panic: ~2.5 s on the wire at 115200

    async def scenario() -> float:
        conn = open_connector(f"serial://{ptys.b}?baud=115200&parity=N&bits=8&stop=1")
        await conn.open()
        tap = EventTap(conn)
        far = open_raw(ptys.a)
        try:
            started = time.monotonic()
            writer = pace_in_thread(far, capture, BAUD_115200)
            got = await tap.wait_bytes(len(capture), timeout=15)
            elapsed = time.monotonic() - started
            writer.join()
        finally:
            os.close(far)
            await tap.close()
        assert sha(got) == sha(capture)
        assert tap.kinds() == ["connected", "closed"]
        return elapsed

    elapsed = run(scenario())
    assert elapsed >= len(capture) / BAUD_115200 * 0.95  # it really was paced, not dumped


@pytest.mark.lab
def test_line_settings_reach_the_device(ptys: PtyPair) -> None:
    async def scenario() -> list[Any]:
        conn = open_connector(f"serial://{ptys.b}?baud=9600&parity=E&bits=7&stop=2&rtscts=1")
        await conn.open()
        try:
            fd = os.open(ptys.b, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                return termios.tcgetattr(fd)
            finally:
                os.close(fd)
        finally:
            await conn.close()

    _, _, cflag, _, ispeed, ospeed, cc = run(scenario())
    assert ispeed == ospeed == termios.B9600
    assert cflag & termios.CSTOPB and cflag & termios.CRTSCTS
    # Linux ptys force CS8 and clear PARENB whatever is asked (pty_set_termios), so 7E cannot
    # be read back from a pty; a real UART keeps them.
    assert cflag & termios.CSIZE == termios.CS8 and not cflag & termios.PARENB
    assert (cc[termios.VMIN], cc[termios.VTIME]) == (1, 0)  # a 0-byte read means hang-up


@pytest.mark.lab
def test_pty_recreated_mid_stream_reconnects_with_a_gap(ptys: PtyPair, qemu_corpus: Path) -> None:
    capture = (qemu_corpus / "oops_null_panic.log").read_bytes()

    async def scenario() -> tuple[EventTap, bytes, bytes]:
        conn = open_connector(f"serial://{ptys.b}", backoff=FAST)
        await conn.open()
        tap = EventTap(conn)
        try:
            # The console is mid-boot at 115200 when the "adapter" is unplugged: the path
            # disappears under the writer, which stops at its first EIO.
            far = open_raw(ptys.a)
            written = Written()
            writer = threading.Thread(target=pace_until_error, args=(far, capture, written))
            writer.start()
            await tap.wait_bytes(4096, 5)
            ptys.stop()
            await tap.wait_kind("disconnected", 5)
            writer.join(5)
            os.close(far)
            before = tap.data()
            assert len(before) <= written.n  # bytes in flight in socat when it died are lost
            await asyncio.sleep(0.3)  # a few failed reconnect attempts against a missing path
            assert tap.kinds()[-1] == "reconnecting"  # said once, however many attempts
            reasons = [e for e in tap.events if getattr(e, "state", "") == "reconnecting"]
            assert len(reasons) == 1 and reasons[0].detail.endswith(": no such device")

            ptys.start()  # ... plugged back in at the same path
            await tap.wait(lambda: tap.kinds()[-1:] == ["connected"], 5, "reconnected")
            rest = capture[len(before) :]
            far = open_raw(ptys.a)
            pace(far, rest, 200_000)
            await tap.wait_bytes(len(before) + len(rest), 5)
            os.close(far)
        finally:
            await tap.close()
        return tap, before, rest

    tap, before, rest = run(scenario())
    outage = ["disconnected", "reconnecting", "gap", "connected"]
    assert tap.kinds() == ["connected", *outage, "closed"]
    assert 4096 <= len(before) < len(capture) and capture.startswith(before)
    assert tap.data() == before + rest  # what arrived is kept, in order, nothing doubled
    gap = next(e for e in tap.events if isinstance(e, Gap))
    lost = next(e for e in tap.events if isinstance(e, StateChange) and e.state == "disconnected")
    assert gap.ended - gap.started >= 0.3 and gap.reason == lost.detail
    assert str(ptys.b) in lost.detail


@dataclass
class Written:
    n: int = 0


def pace_until_error(fd: int, data: bytes, written: Written) -> None:
    """Pace at 115200 until the pty goes away under us (EIO), like a UART losing its cable."""
    step = 64
    start = time.monotonic()
    for offset in range(0, len(data), step):
        time.sleep(max(0.0, start + offset / BAUD_115200 - time.monotonic()))
        try:
            written.n += os.write(fd, data[offset : offset + step])
        except OSError:
            return


@pytest.mark.lab
def test_break_on_a_pty_is_refused_because_linux_ptys_drop_it(ptys: PtyPair) -> None:
    # The kernel fact first: tcsendbreak on either side of a pty returns 0 at once and the far
    # side, set to mark a break as \xff\x00\x00 (PARMRK, no IGNBRK/BRKINT), receives nothing.
    master, slave = pty.openpty()
    try:
        for sender, receiver in ((master, slave), (slave, master)):
            for fd in (sender, receiver):
                attrs = termios.tcgetattr(fd)
                attrs[0] = (attrs[0] & ~(termios.IGNBRK | termios.BRKINT)) | termios.PARMRK
                termios.tcsetattr(fd, termios.TCSANOW, attrs)
            started = time.monotonic()
            termios.tcsendbreak(sender, 0)
            assert time.monotonic() - started < 0.1  # a real UART holds the line 0.25 s
            assert select.select([receiver], [], [], 0.3)[0] == []
    finally:
        os.close(master)
        os.close(slave)

    async def scenario() -> str:
        conn = open_connector(f"serial://{ptys.b}")
        await conn.open()
        try:
            with pytest.raises(Unsupported) as err:
                await conn.send_break()
            await conn.write(b"still usable\r")
        finally:
            await conn.close()
        return str(err.value)

    far = open_raw(ptys.a)
    try:
        message = run(scenario())
        assert read_exactly(far, 13, 2) == b"still usable\r"
    finally:
        os.close(far)
    assert message.startswith(f"{ptys.b}: a pseudo-terminal cannot carry a BREAK")
    assert "\n" not in message


@pytest.mark.lab
def test_write_reaches_the_far_end(ptys: PtyPair) -> None:
    payload = b"root\r" + bytes(range(256))
    far = open_raw(ptys.a)

    async def scenario() -> None:
        conn = open_connector(f"serial://{ptys.b}")
        await conn.open()
        try:
            await conn.write(payload)
        finally:
            await conn.close()

    try:
        run(scenario())
        assert read_exactly(far, len(payload), 2) == payload
    finally:
        os.close(far)


@pytest.mark.lab
def test_busy_device_is_one_clear_line(ptys: PtyPair) -> None:
    async def scenario() -> str:
        first = open_connector(str(ptys.b))
        await first.open()
        try:
            with pytest.raises(ConnectorError) as err:
                await open_connector(str(ptys.b)).open()
        finally:
            await first.close()
        again = open_connector(str(ptys.b))  # released on close
        await again.open()
        await again.close()
        return str(err.value)

    message = run(scenario())
    assert message == f"{ptys.b}: busy: another program has it open (exclusive lock)"


@pytest.mark.lab
def test_idle_local_connector_burns_no_cpu(ptys: PtyPair) -> None:
    async def scenario() -> float:
        conn = open_connector(f"serial://{ptys.b}")
        await conn.open()
        tap = EventTap(conn)
        try:
            cpu = time.process_time()
            await asyncio.sleep(1.0)
            return time.process_time() - cpu
        finally:
            await tap.close()

    assert run(scenario()) < 0.05


# -- socket:// and failures ------------------------------------------------------------------
@pytest.fixture
def tcp_pty(tmp_path: Path, processes: Processes) -> tuple[int, Path, subprocess.Popen[bytes]]:
    """socat listening on 127.0.0.1:PORT; its pty (link `c`) appears when a client connects."""
    socat = require_commands("socat")["socat"]
    port = free_tcp_port()
    link = tmp_path / "c"
    listen = f"TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr"
    proc = processes.start([socat, listen, f"pty,raw,echo=0,link={link}"])
    assert wait_for(lambda: tcp_listening(port), 5)
    return port, link, proc


@pytest.mark.lab
def test_socket_url_carries_data_both_ways_but_no_break(
    tcp_pty: tuple[int, Path, subprocess.Popen[bytes]],
) -> None:
    port, link, _ = tcp_pty
    inbound = bytes(range(256)) * 64  # 16 KiB, every byte value

    async def scenario() -> tuple[bytes, str, float]:
        conn = open_connector(f"socket://127.0.0.1:{port}")
        await conn.open()
        tap = EventTap(conn)
        try:
            assert wait_for_path(link, 5)
            far = open_raw(link)
            try:
                cpu = time.process_time()
                await asyncio.sleep(1.0)  # idle: the reader thread sleeps in select()
                idle_cpu = time.process_time() - cpu
                pace_in_thread(far, inbound, 500_000).join()
                got = await tap.wait_bytes(len(inbound), 5)
                await conn.write(b"sysrq?\xff\r")
                echoed = await asyncio.to_thread(read_exactly, far, 8, 2)
                assert echoed == b"sysrq?\xff\r"
                with pytest.raises(Unsupported) as err:
                    await conn.send_break()
            finally:
                os.close(far)
        finally:
            await tap.close()
        return got, str(err.value), idle_cpu

    got, message, idle_cpu = run(scenario())
    assert sha(got) == sha(inbound)
    assert message.startswith(f"socket://127.0.0.1:{port}: a raw TCP port cannot carry a BREAK")
    assert idle_cpu < 0.05


@pytest.mark.lab
def test_socket_peer_gone_reconnects(
    tcp_pty: tuple[int, Path, subprocess.Popen[bytes]], processes: Processes
) -> None:
    port, link, proc = tcp_pty
    socat = require_commands("socat")["socat"]

    async def scenario() -> EventTap:
        conn = open_connector(f"socket://127.0.0.1:{port}", backoff=FAST)
        await conn.open()
        tap = EventTap(conn)
        try:
            processes.stop(proc)  # the console server goes away
            await tap.wait_kind("disconnected", 5)
            listen = f"TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr"
            processes.start([socat, listen, f"pty,raw,echo=0,link={link}"])
            await tap.wait(lambda: tap.kinds()[-1:] == ["connected"], 5, "reconnected")
            assert wait_for_path(link, 5)
            far = open_raw(link)
            try:
                os.write(far, b"back\r\n")
                assert await tap.wait_bytes(6, 5) == b"back\r\n"
            finally:
                os.close(far)
        finally:
            await tap.close()
        return tap

    tap = run(scenario())
    # A "reconnecting" (why an attempt failed) if one came before the peer was back.
    kinds = [k for k in tap.kinds() if k != "reconnecting"]
    assert kinds == ["connected", "disconnected", "gap", "connected", "closed"]
    lost = next(e for e in tap.events if isinstance(e, StateChange) and e.state == "disconnected")
    # socat closes with a FIN, or a RST if it had unread bytes: both are the server leaving.
    assert lost.detail in {
        f"socket://127.0.0.1:{port}: connection closed by the server",
        f"socket://127.0.0.1:{port}: connection reset by the server",
    }


@pytest.mark.lab
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("socket://127.0.0.1:1", "socket://127.0.0.1:1: connection refused"),
        ("rfc2217://127.0.0.1:1", "rfc2217://127.0.0.1:1: connection refused"),
        ("serial:///dev/crashcart-no-such-tty", "/dev/crashcart-no-such-tty: no such device"),
    ],
)
def test_unreachable_is_one_clear_line(url: str, expected: str) -> None:
    async def scenario() -> str:
        conn = open_connector(url)
        with pytest.raises(ConnectorError) as err:
            await conn.open()
        return str(err.value)

    assert run(scenario()) == expected


@pytest.mark.lab
def test_socket_keeps_what_the_server_sends_at_once() -> None:
    # Console servers (and QEMU's -serial tcp) send what they hold the moment a client
    # connects; pyserial's open would flush it as "stale input".
    greeting = b"\r\n[ 3.14] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n"

    async def scenario() -> bytes:
        async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(greeting)
            await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = open_connector(f"socket://127.0.0.1:{port}")
        await conn.open()
        tap = EventTap(conn)
        try:
            return await tap.wait_bytes(len(greeting), 5)
        finally:
            await tap.close()
            server.close()

    for _ in range(3):
        assert run(scenario()) == greeting


@pytest.mark.lab
def test_local_device_keeps_what_waited_in_its_input_queue(ptys: PtyPair) -> None:
    # Written before anyone opened b: it waits in b's input queue, as a UART's FIFO and the
    # tty buffer hold what arrived during a reconnect. Opening must not flush it.
    far = open_raw(ptys.a)
    os.write(far, b"Kernel panic - not syncing: Fatal exception\r\n")
    time.sleep(0.2)  # through socat into b

    async def scenario() -> bytes:
        conn = open_connector(f"serial://{ptys.b}")
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
